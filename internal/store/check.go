package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrDamaged means the store's files cannot be opened as they are.
var ErrDamaged = errors.New("the store's files are damaged")

// checkMember looks at the files of an existing etcd member in dir before
// etcd opens them: etcd panics in a goroutine of its own on a damaged
// database, which would take the daemon down with a goroutine dump, and
// can start afresh beside a lost write-ahead log. A new dir passes.
func checkMember(dir string) error {
	member := filepath.Join(dir, "member")
	if _, err := os.Stat(member); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	restore := "stop the daemon and restore the data directory from a backup, or move it aside to start empty"
	wals, _ := filepath.Glob(filepath.Join(member, "wal", "*.wal"))
	if len(wals) == 0 {
		return fmt.Errorf("%w: the write-ahead log %s is missing or empty; %s", ErrDamaged, filepath.Join(member, "wal"), restore)
	}
	db := filepath.Join(member, "snap", "db")
	if err := checkBolt(db); err != nil {
		return fmt.Errorf("%w: the database %s cannot be opened (%v); %s", ErrDamaged, db, err, restore)
	}
	return nil
}

// checkBolt opens a bbolt file read-only and reads its buckets; bbolt may
// panic on a file that is not one, so that is recovered here.
func checkBolt(path string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	if _, err := os.Stat(path); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func([]byte, *bolt.Bucket) error { return nil })
	})
}
