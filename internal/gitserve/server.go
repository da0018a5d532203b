package gitserve

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
)

// Server serves the bare repositories in Dir, one per name:
// http://<addr>/<name>.git. A client that may push creates a missing
// repository by naming it.
type Server struct {
	Dir string
	// CanPush decides who may push; nil allows loopback clients only.
	CanPush func(*http.Request) bool

	mu sync.Mutex // serialises pushes
}

var repoPath = regexp.MustCompile(`^/([a-z0-9][a-z0-9-]{0,62})\.git/(info/refs|git-upload-pack|git-receive-pack)$`)

// ServeHTTP implements the smart HTTP protocol (stateless RPC).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := repoPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.NotFound(w, r)
		return
	}
	name, op := m[1], m[2]
	service := op
	if op == "info/refs" {
		service = r.URL.Query().Get("service")
	}
	switch {
	case service != transport.UploadPackServiceName && service != transport.ReceivePackServiceName:
		http.Error(w, "only smart HTTP (git-upload-pack, git-receive-pack) is served", http.StatusForbidden)
		return
	case service == transport.ReceivePackServiceName && !s.canPush(r):
		http.Error(w, "this repository is read-only from here", http.StatusForbidden)
		return
	case op == "info/refs" && r.Method != http.MethodGet, op != "info/refs" && r.Method != http.MethodPost:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if s.canPush(r) {
		// The router's own fetches and pushes; a push runs alone.
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.ensureRepo(name); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	srv := server.NewServer(server.NewFilesystemLoader(osfs.New(s.Dir)))
	ep, err := transport.NewEndpoint("/" + name + ".git")
	if err == nil {
		if op == "info/refs" {
			err = advertise(w, r, srv, ep, service)
		} else {
			err = rpc(w, r, srv, ep, service)
		}
	}
	if errors.Is(err, transport.ErrRepositoryNotFound) {
		http.NotFound(w, r)
	} else if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (s *Server) canPush(r *http.Request) bool {
	if s.CanPush != nil {
		return s.CanPush(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

func (s *Server) ensureRepo(name string) error {
	dir := filepath.Join(s.Dir, name+".git")
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		return nil
	}
	_, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{Bare: true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	return err
}

func advertise(w http.ResponseWriter, r *http.Request, srv transport.Transport, ep *transport.Endpoint, service string) error {
	var sess interface {
		AdvertisedReferencesContext(context.Context) (*packp.AdvRefs, error)
		Close() error
	}
	var err error
	if service == transport.UploadPackServiceName {
		sess, err = srv.NewUploadPackSession(ep, nil)
	} else {
		sess, err = srv.NewReceivePackSession(ep, nil)
	}
	if err != nil {
		return err
	}
	defer sess.Close()
	refs, err := sess.AdvertisedReferencesContext(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", fmt.Sprintf("application/x-%s-advertisement", service))
	w.Header().Set("Cache-Control", "no-cache")
	enc := pktline.NewEncoder(w)
	if err := enc.EncodeString(fmt.Sprintf("# service=%s\n", service)); err != nil {
		return err
	}
	if err := enc.Flush(); err != nil {
		return err
	}
	return refs.Encode(w)
}

func rpc(w http.ResponseWriter, r *http.Request, srv transport.Transport, ep *transport.Endpoint, service string) error {
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			return err
		}
		defer gz.Close()
		body = gz
	}
	w.Header().Set("Content-Type", fmt.Sprintf("application/x-%s-result", service))
	if service == transport.UploadPackServiceName {
		return uploadPack(w, r, srv, ep, body)
	}
	return receivePack(w, r, srv, ep, body)
}

func uploadPack(w http.ResponseWriter, r *http.Request, srv transport.Transport, ep *transport.Endpoint, body io.Reader) error {
	req := packp.NewUploadPackRequest()
	if err := req.UploadRequest.Decode(body); err != nil {
		return fmt.Errorf("reading the upload-pack request: %w", err)
	}
	// go-git decodes the wants; the haves that follow are read here.
	sc := pktline.NewScanner(body)
	for sc.Scan() {
		line := strings.TrimSpace(string(sc.Bytes()))
		if line == "done" {
			break
		}
		if h, ok := strings.CutPrefix(line, "have "); ok {
			req.Haves = append(req.Haves, plumbing.NewHash(h))
		}
	}
	// The shallow capability is not advertised (git refuses --depth with a
	// clear message), but go-git clients such as Flux's ask for it anyway
	// with a depth, which go-git's server refuses. Such a request is
	// answered with the whole history and an empty shallow list, which
	// those clients accept.
	shallow := !req.Depth.IsZero()
	req.Depth = packp.DepthCommits(0)
	req.Capabilities.Delete(capability.Shallow)
	sess, err := srv.NewUploadPackSession(ep, nil)
	if err != nil {
		return err
	}
	defer sess.Close()
	resp, err := sess.UploadPack(r.Context(), req)
	if err != nil {
		return err
	}
	defer resp.Close()
	if shallow {
		if err := pktline.NewEncoder(w).Flush(); err != nil { // the empty shallow list
			return err
		}
	}
	return resp.Encode(w)
}

func receivePack(w http.ResponseWriter, r *http.Request, srv transport.Transport, ep *transport.Endpoint, body io.Reader) error {
	req := packp.NewReferenceUpdateRequest()
	if err := req.Decode(body); err != nil {
		return fmt.Errorf("reading the receive-pack request: %w", err)
	}
	sess, err := srv.NewReceivePackSession(ep, nil)
	if err != nil {
		return err
	}
	defer sess.Close()
	// go-git's server updates refs without comparing their old values:
	// compare here (pushes are serialised), so a push that did not see the
	// current head is refused, as git does for a non-fast-forward.
	refs, err := sess.AdvertisedReferencesContext(r.Context())
	if err != nil {
		return err
	}
	for _, cmd := range req.Commands {
		current := refs.References[cmd.Name.String()]
		if current != cmd.Old {
			return fmt.Errorf("%s is at %s, not %s: fetch first", cmd.Name, current, cmd.Old)
		}
	}
	status, err := sess.ReceivePack(r.Context(), req)
	if status != nil {
		return status.Encode(w)
	}
	return err
}
