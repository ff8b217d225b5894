package store

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/slipway-dev/slipway/internal/settings"
)

// App is a named web application. Its Settings are the ones the next release
// will be made with; each Release keeps its own snapshot.
type App struct {
	Name     string            `json:"name"`
	Created  time.Time         `json:"created"`
	Settings settings.Settings `json:"settings"`
	// CurrentRelease is the number of the release taking traffic; 0 before
	// the first successful deployment.
	CurrentRelease int `json:"current_release"`
	// Staged is an artifact uploaded to be taken live later (an App
	// Service deploy with restart=false): the next restart or settings
	// change makes a release of it, a deploy of another artifact replaces
	// it. Nil when there is none.
	Staged *ArtifactRef `json:"staged,omitempty"`
}

// ArtifactRef names an uploaded artifact by digest.
type ArtifactRef struct {
	Digest string `json:"digest"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Kind   string `json:"kind"`
}

// Release is an immutable pair of artifact and settings, numbered v1, v2, …
type Release struct {
	App      string            `json:"app"`
	Number   int               `json:"number"`
	Artifact ArtifactRef       `json:"artifact"`
	Settings settings.Settings `json:"settings"`
	// Stack is the stack the release runs on, from its settings or, when
	// they name none, from its artifact, decided when it was made; ""
	// for a release made before releases recorded theirs.
	Stack      string    `json:"stack,omitempty"`
	Created    time.Time `json:"created"`
	Author     string    `json:"author,omitempty"`
	Message    string    `json:"message,omitempty"`
	Deployment int       `json:"deployment"`
	// Changes says what this release changed from the one before it, with
	// the values of secrets left out.
	Changes []string `json:"changes,omitempty"`
	// RolledBackFrom is the release this one copies, for a rollback.
	RolledBackFrom int `json:"rolled_back_from,omitempty"`
}

// Version is the release's name as people see it: "v3".
func (r Release) Version() string { return fmt.Sprintf("v%d", r.Number) }

// Deployment states.
const (
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Deployment steps, in the order a successful deployment passes them.
const (
	StepReceived   = "received"
	StepStarting   = "starting"
	StepWarmingUp  = "warming up"
	StepSwitched   = "switched"
	StepDraining   = "draining"
	StepOldStopped = "old instances stopped"
	StepSucceeded  = "succeeded"
	StepFailed     = "failed"
)

// Event is one line of a deployment's log. Step is set when the event marks
// the start of a step, empty for progress messages within a step.
type Event struct {
	At      time.Time `json:"at"`
	Step    string    `json:"step,omitempty"`
	Message string    `json:"message"`
}

// Kinds of deployment.
const (
	KindDeploy   = "deploy"   // an uploaded artifact
	KindSettings = "settings" // a settings change
	KindScale    = "scale"    // more or fewer instances of the live release
	KindRestart  = "restart"  // fresh instances of the live release
	KindRollback = "rollback" // an earlier release, as a new one
	KindStart    = "start"    // the live release, after the daemon started
	// KindStage is an upload kept to be taken live later (App Service's
	// restart=false): it started nothing and ends at once.
	KindStage = "stage"
	// KindRecord is no deployment that ran here but a pipeline's report of
	// its own run (App Service's PUT of a deployment record), kept as
	// history only: it has no release.
	KindRecord = "record"
)

// Deployment is the act of taking a release live.
type Deployment struct {
	App      string      `json:"app"`
	ID       int         `json:"id"`
	Kind     string      `json:"kind"`
	Release  int         `json:"release"`
	Artifact ArtifactRef `json:"artifact"`
	State    string      `json:"state"`
	// Reason says why a deployment failed or was cancelled.
	Reason   string    `json:"reason,omitempty"`
	Author   string    `json:"author,omitempty"`
	Message  string    `json:"message,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Events   []Event   `json:"events"`
	// Deployer names the client that asked for the deployment, as App
	// Service pipelines name themselves (GITHUB_ONE_DEPLOY, VSTS_ZIP_DEPLOY,
	// …); empty for the native API.
	Deployer string `json:"deployer,omitempty"`
	// ExternalID is the id a pipeline gave a record (KindRecord).
	ExternalID string `json:"external_id,omitempty"`
}

// Done reports whether the deployment has ended.
func (d Deployment) Done() bool { return d.State != StateRunning }

// Bounds of a deployment's record, so that it always fits in one store
// write (MaxRecordBytes), whatever the app prints or the caller sends.
const (
	// MaxEvents bounds a deployment's log; the oldest progress messages go
	// first.
	MaxEvents = 500
	// MaxEventBytes bounds one event's message (an app's last output
	// lines can be long); the rest is cut, with a note.
	MaxEventBytes = 8 << 10
	// maxEventsBytes bounds all the messages of a log together.
	maxEventsBytes = 512 << 10
	// MaxMessageBytes and MaxAuthorBytes bound what a caller says of a
	// change; longer ones are refused before anything is stored.
	MaxMessageBytes = 4 << 10
	MaxAuthorBytes  = 256
	// MaxDeployerBytes bounds a deployment's Deployer, and MaxExternalIDBytes
	// a record's ExternalID, like the author.
	MaxDeployerBytes   = 256
	MaxExternalIDBytes = 256
	// MaxRecords is how many records (KindRecord) an app keeps; the
	// oldest go first.
	MaxRecords = 100
)

// AddEvent appends an event, dropping the oldest progress messages while
// the log is over its bounds (steps are always kept).
func (d *Deployment) AddEvent(step, message string) Event {
	e := Event{At: time.Now().UTC(), Step: step, Message: Truncate(message, MaxEventBytes)}
	d.Events = append(d.Events, e)
	for len(d.Events) > MaxEvents || d.eventBytes() > maxEventsBytes {
		i := slices.IndexFunc(d.Events, func(e Event) bool { return e.Step == "" })
		if i < 0 {
			break
		}
		d.Events = slices.Delete(d.Events, i, i+1)
	}
	return e
}

func (d *Deployment) eventBytes() int {
	n := 0
	for _, e := range d.Events {
		n += len(e.Message)
	}
	return n
}

// Truncate cuts s to at most max bytes, on a rune boundary, saying so.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const note = " … (cut)"
	cut := max - len(note)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + note
}

// InstanceRecord remembers a process the daemon started, so that a daemon
// that died without stopping it can find and stop it on its next start.
type InstanceRecord struct {
	ID      string `json:"id"`
	App     string `json:"app"`
	Release int    `json:"release"`
	PID     int    `json:"pid"`
	// StartTicks is the process start time from /proc/PID/stat, which tells
	// the process apart from a later one that reuses its pid.
	StartTicks uint64 `json:"start_ticks"`
	Port       int    `json:"port"`
	// Cgroup is the instance's cgroup directory, "" if it has none.
	Cgroup string `json:"cgroup,omitempty"`
	// Node is the node the instance runs on; set by PutInstance.
	Node string `json:"node,omitempty"`
}
