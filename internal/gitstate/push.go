package gitstate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"

	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// errRemoteMoved means the branch is not where the commit was built on:
// someone else pushed. The batch is replayed after a fetch.
var errRemoteMoved = errors.New("the remote branch moved")

// pack encodes objects (those a commit added, the commit included) as a
// packfile.
func (w *Writer) pack(objects []plumbing.Hash) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := packfile.NewEncoder(&buf, w.objects, false).Encode(objects, 0); err != nil {
		return nil, fmt.Errorf("packing: %w", err)
	}
	return buf.Bytes(), nil
}

// savePack stores a pushed pack in the on-disk clone and empties the
// in-memory overlay. Callers hold mu exclusively.
func (w *Writer) savePack(pack []byte) error {
	if err := w.storePack(pack); err != nil {
		return err
	}
	w.objects.clear()
	return nil
}

// storePack stores a pack in the on-disk clone. Callers hold mu
// exclusively.
func (w *Writer) storePack(pack []byte) error {
	pw, err := w.repo.Storer.(storer.PackfileWriter).PackfileWriter()
	if err != nil {
		return err
	}
	if _, err := pw.Write(pack); err != nil {
		pw.Close()
		return fmt.Errorf("saving the pack: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("saving the pack: %w", err)
	}
	return nil
}

// sendPack updates the branch from base to commit with one receive-pack
// request carrying pack, the objects the commit added. Unlike
// go-git's Push it does not walk the trees reachable from the remote head,
// so its cost does not grow with the repository. It is fast-forward only:
// it refuses when the remote head is not base, and the server checks the
// same atomically.
func (w *Writer) sendPack(ctx context.Context, base, commit plumbing.Hash, pack []byte) error {
	ep, err := transport.NewEndpoint(w.cfg.URL)
	if err != nil {
		return err
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return err
	}
	sess, err := cl.NewReceivePackSession(ep, w.cfg.Auth)
	if err != nil {
		return err
	}
	defer sess.Close()
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return err
	}
	ref := w.localRef()
	var remote plumbing.Hash
	if adv != nil {
		remote = adv.References[ref.String()]
	}
	if remote != base {
		return fmt.Errorf("%w: it is at %s, the commit was built on %s", errRemoteMoved, remote, base)
	}
	req := packp.NewReferenceUpdateRequest()
	if adv != nil {
		req = packp.NewReferenceUpdateRequestFromCapabilities(adv.Capabilities)
	}
	// The server's messages (a hook's refusal among them) come on side
	// band 2: keep them for the error.
	var messages bytes.Buffer
	if adv != nil && adv.Capabilities.Supports(capability.Sideband64k) {
		if err := req.Capabilities.Set(capability.Sideband64k); err != nil {
			return err
		}
		req.Progress = &messages
	}
	req.Commands = []*packp.Command{{Name: ref, Old: base, New: commit}}
	req.Packfile = io.NopCloser(bytes.NewReader(pack))
	status, err := sess.ReceivePack(ctx, req)
	if err == nil && status != nil {
		err = status.Error()
	}
	if err != nil && status != nil && status.Error() != nil {
		// The server read the pack and refused the update (a hook, a
		// size rule): the same content would be refused again.
		return fmt.Errorf("%w: %v: %s", statestore.ErrRefused, err, serverMessages(messages.String()))
	}
	return err
}

// serverMessages joins what the server said into one line.
func serverMessages(s string) string {
	var lines []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
