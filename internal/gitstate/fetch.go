package gitstate

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
)

// Fetch updates the local copy of the remote branch and returns its head
// ("" when the branch does not exist yet). It is the cheap reachability and
// credentials check of a state store.
func (w *Writer) Fetch(ctx context.Context) (string, error) {
	w.net.Lock()
	defer w.net.Unlock()
	return w.fetch(ctx)
}

// Refresh fetches like Fetch and also reports whether any fetch since the
// last Refresh found the branch away from the head the writer knew:
// someone else pushed, or reset it. The writer's own pushes are not moves:
// a push holds net until its commit is recorded, so no fetch sees it first.
func (w *Writer) Refresh(ctx context.Context) (head string, moved bool, err error) {
	w.net.Lock()
	defer w.net.Unlock()
	if head, err = w.fetch(ctx); err != nil {
		return "", false, err
	}
	return head, w.moved.Swap(false), nil
}

// fetch downloads the remote branch's new objects with no lock held, then
// stores them and moves the remote ref under mu: lookups wait for the disk
// at most, never for the network. Callers hold net.
func (w *Writer) fetch(ctx context.Context) (string, error) {
	w.mu.RLock()
	have, _, err := w.remoteHead()
	w.mu.RUnlock()
	if err != nil {
		return "", err
	}
	remote, pack, err := w.download(ctx, have)
	if err != nil {
		return "", fmt.Errorf("fetching %s from %s: %w", w.cfg.Branch, w.cfg.URL, err)
	}
	head, err := w.record(remote, pack)
	if err != nil {
		return "", err
	}
	if len(pack) > 0 {
		w.tidy()
	}
	return head, nil
}

// record stores what a fetch received and moves the remote ref; it sets
// moved when the branch is not where the writer left it.
func (w *Writer) record(remote plumbing.Hash, pack []byte) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(pack) > 0 {
		if err := w.storePack(pack); err != nil {
			return "", err
		}
	}
	if remote.IsZero() {
		// The branch does not exist yet: the first push creates it.
		if err := w.repo.Storer.RemoveReference(w.remoteRef()); err != nil {
			return "", err
		}
	} else if err := w.repo.Storer.SetReference(plumbing.NewHashReference(w.remoteRef(), remote)); err != nil {
		return "", err
	}
	known, before := w.head.known, w.head.commit
	w.fetched.Store(true)
	w.head.known = false
	c, t, err := w.remoteHead()
	if err != nil {
		return "", err
	}
	if known && c != before {
		w.moved.Store(true)
	}
	w.head.known, w.head.commit, w.head.tree = true, c, t
	if c.IsZero() {
		return "", nil
	}
	return c.String(), nil
}

// download asks the remote for its branch head and, when the clone lacks
// it, for a pack of the objects it lacks (have is the head the clone
// knows). It returns a zero head when the branch does not exist.
func (w *Writer) download(ctx context.Context, have plumbing.Hash) (plumbing.Hash, []byte, error) {
	ep, err := transport.NewEndpoint(w.cfg.URL)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	sess, err := cl.NewUploadPackSession(ep, w.cfg.Auth)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	defer sess.Close()
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return plumbing.ZeroHash, nil, nil
	}
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	remote := adv.References[w.localRef().String()]
	if remote.IsZero() || remote == have || w.hasCommit(remote) {
		return remote, nil, nil
	}
	req := packp.NewUploadPackRequestFromCapabilities(adv.Capabilities)
	req.Wants = []plumbing.Hash{remote}
	if !have.IsZero() {
		req.Haves = []plumbing.Hash{have}
	}
	res, err := sess.UploadPack(ctx, req)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	defer res.Close()
	var r io.Reader = res
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		r = sideband.NewDemuxer(sideband.Sideband64k, res)
	case req.Capabilities.Supports(capability.Sideband):
		r = sideband.NewDemuxer(sideband.Sideband, res)
	}
	pack, err := io.ReadAll(r)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	return remote, pack, nil
}

// hasCommit reports whether the clone holds commit h.
func (w *Writer) hasCommit(h plumbing.Hash) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	_, err := w.repo.Storer.EncodedObject(plumbing.CommitObject, h)
	return err == nil
}
