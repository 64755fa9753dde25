package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"time"
)

// files holds the page: index.html (a template) and the static files
// under assets/ that it links to with relative URLs.
//
//go:embed assets
var files embed.FS

// asset is one static file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// assetTypes are the content types of the page's files, by extension.
// (mime.TypeByExtension would load the system's whole mime.types table,
// half a megabyte of heap kept for the life of the process.)
var assetTypes = map[string]string{
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".html": "text/html; charset=utf-8",
}

// loadAssets reads every static file once and tags it with a hash of its
// content, so browsers revalidate cheaply after an upgrade.
func loadAssets() (map[string]asset, error) {
	entries, err := fs.ReadDir(files, "assets")
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	out := make(map[string]asset, len(entries))
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "index.html" {
			continue
		}
		b, err := files.ReadFile(path.Join("assets", name))
		if err != nil {
			return nil, fmt.Errorf("assets: %w", err)
		}
		sum := sha256.Sum256(b)
		ctype, ok := assetTypes[path.Ext(name)]
		if !ok {
			ctype = "application/octet-stream"
		}
		out[name] = asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out, nil
}

// handleAsset serves a file of the assets folder by its bare name; any
// other name (a path, "..", the template) is not found.
func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := s.assets[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func parseIndex() (*template.Template, error) {
	t, err := template.ParseFS(files, "assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("page template: %w", err)
	}
	return t, nil
}

// ingressPath matches what the Supervisor puts in X-Ingress-Path.
var ingressPath = regexp.MustCompile(`^/api/hassio_ingress/[A-Za-z0-9_-]{1,128}$`)

// pageData fills index.html.
type pageData struct {
	// Base is the page's own URL path with a trailing slash when it came
	// through ingress: relative links then resolve even if the address
	// bar lacks the final slash.
	Base    string
	Version string
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	d := pageData{Version: s.o.Version}
	if p := r.Header.Get("X-Ingress-Path"); ingressPath.MatchString(p) {
		d.Base = p + "/"
	}
	var buf bytes.Buffer
	if err := s.index.Execute(&buf, d); err != nil {
		s.log.Error().Err(err).Msg("page template failed")
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes())
}
