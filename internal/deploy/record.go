package deploy

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/slipway-dev/slipway/internal/store"
)

// Record is a pipeline's report of its own run, kept as history (App
// Service's PUT of a deployment record): nothing runs.
type Record struct {
	App string
	// ID is the pipeline's id for the record: 1 to 256 letters, digits,
	// '-', '_' and '.'.
	ID string
	// Succeeded is the run's outcome as the pipeline reports it.
	Succeeded bool
	Meta
}

// AddRecord stores r as a deployment of kind store.KindRecord, finished
// when it is recorded, and removes the app's oldest records past
// store.MaxRecords. An id that names a deployment or record of the app
// already is refused with store.ErrExists.
func (m *Manager) AddRecord(ctx context.Context, r Record) (store.Deployment, error) {
	if err := validRecordID(r.ID); err != nil {
		return store.Deployment{}, err
	}
	if err := r.Meta.Validate(); err != nil {
		return store.Deployment{}, err
	}
	if _, err := m.opts.Store.App(ctx, r.App); err != nil {
		return store.Deployment{}, err
	}
	deps, err := m.opts.Store.Deployments(ctx, r.App)
	if err != nil {
		return store.Deployment{}, err
	}
	var records []store.Deployment
	for _, d := range deps {
		if d.ExternalID == r.ID || strconv.Itoa(d.ID) == r.ID {
			return store.Deployment{}, fmt.Errorf("%w: app %s has a deployment %s already", store.ErrExists, r.App, r.ID)
		}
		if d.Kind == store.KindRecord {
			records = append(records, d)
		}
	}
	now := time.Now().UTC()
	d := store.Deployment{App: r.App, Kind: store.KindRecord, ExternalID: r.ID, State: store.StateFailed,
		Author: r.Author, Message: r.Message, Deployer: r.Deployer, Started: now, Finished: now}
	if r.Succeeded {
		d.State = store.StateSucceeded
	}
	d.AddEvent(store.StepReceived, fmt.Sprintf("Recorded a run that %s reports as %s; it deployed nothing here itself", orUnknown(r.Deployer), d.State))
	if err := m.opts.Store.CreateDeployment(ctx, &d); err != nil {
		return store.Deployment{}, err
	}
	for _, old := range records[:max(0, len(records)+1-store.MaxRecords)] {
		if err := m.opts.Store.DeleteDeployment(ctx, r.App, old.ID); err != nil {
			m.logger.Warn("removing an old record", "app", r.App, "deployment", old.ID, "err", err)
		}
	}
	return d, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "a pipeline"
	}
	return s
}

// validRecordID checks a record's id: pipelines send numbers and GUIDs,
// and it ends up in URLs and the store's keys' neighbourhood.
func validRecordID(id string) error {
	if id == "" || len(id) > store.MaxExternalIDBytes {
		return fmt.Errorf("%w: a record's id has 1 to %d characters, not %d", ErrBadMeta, store.MaxExternalIDBytes, len(id))
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: a record's id may hold letters, digits, '-', '_' and '.', not %q", ErrBadMeta, c)
		}
	}
	return nil
}
