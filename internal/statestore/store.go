package statestore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Writer writes Changes to one state store. Implementations are safe for
// concurrent use.
type Writer interface {
	// Write stores changes (with others queued at the same time) and
	// returns the revision carrying them. note says what they are for.
	Write(ctx context.Context, note string, changes ...Change) (Result, error)
	// Refresh re-reads the store and returns its revision ("" when empty),
	// and whether it changed under the writer since the last Refresh
	// (someone else wrote). It is the store's cheap readiness check.
	Refresh(ctx context.Context) (revision string, moved bool, err error)
	// Exists reports whether dir holds anything at the last known revision.
	Exists(dir string) (bool, error)
	// Contains reports whether revision head includes revision r: it is r
	// or a later one. It answers "did Flux apply my write?".
	Contains(head, r string) (bool, error)
	// Dirs lists the directories exactly depth levels below dir with the
	// revision that last changed each, for inspection.
	Dirs(dir string, depth int) ([]Dir, error)
	// List lists the directories exactly depth levels below dir at the
	// last known revision, paths relative to the root, at a cost that does
	// not grow with history (for the orphan sweep).
	List(dir string, depth int) ([]string, error)
	// Close stops the writer; queued Writes fail with ErrClosed.
	Close()
}

// Change sets the content of one directory.
type Change struct {
	// Dir is relative to the writer's root, for example
	// "dev-1/resources/team-a/dynamodb/orders".
	Dir string
	// Files maps file names (no slashes) to content.
	Files map[string][]byte
	// Replace makes Dir hold exactly Files, removing anything else in it;
	// with no Files the directory is removed. Without Replace the Files are
	// added or overwritten and the rest of Dir is kept.
	Replace bool
}

// Check refuses a Change whose directory or file names could leave it.
func (c Change) Check() error {
	if err := CheckPath(c.Dir); err != nil {
		return err
	}
	for name := range c.Files {
		if err := checkElem(name); err != nil {
			return fmt.Errorf("file in %s: %w", c.Dir, err)
		}
	}
	return nil
}

// Result is the outcome of a Write.
type Result struct {
	// Commit is the revision that carries the Changes: a Git commit, or a
	// bucket's content digest.
	Commit string
	// Changed is false when the Changes left their directories as they
	// were, so nothing was written for them.
	Changed bool
}

// Short is a revision cut to 12 characters, as messages show it.
func Short(revision string) string {
	if len(revision) > 12 {
		return revision[:12]
	}
	return revision
}

// Dir is a directory at the last known revision and when it last changed.
type Dir struct {
	// Path is relative to the writer's root.
	Path string
	// Commit and When say when it last changed; Commit is "" when that is
	// not known (older than the history searched).
	Commit string
	When   time.Time
}

// Paths are the dirs' paths, for List.
func Paths(dirs []Dir) []string {
	out := make([]string, len(dirs))
	for i := range dirs {
		out[i] = dirs[i].Path
	}
	return out
}

// ErrClosed is returned by Writes on a closed Writer.
var ErrClosed = errors.New("state store writer closed")

// ErrUnknownCommit is returned by Contains for a revision the writer has not
// seen (yet): someone else's write it has not read.
var ErrUnknownCommit = errors.New("revision not known to the writer")

// ErrRefused wraps a store's refusal of the content of a batch (a Git
// pre-receive hook, a key the bucket will not take), as opposed to a
// failure to reach it. A refused batch is not retried as it is: the
// Batcher splits it until only the Writes the store refuses fail.
var ErrRefused = errors.New("refused by the state store")
