package emulate

import (
	"encoding/json"
	"errors"
	"net/http"
)

// controlPrefix is where the emulator's own endpoints live, beside the
// cloud's paths; no cloud serves anything there.
const controlPrefix = "/lifeboat/"

// controlHandler serves:
//
//	POST /lifeboat/notice  {"kind": K, "at": RFC3339 | "in": "2s", "deadline_in": "120s"}
//	                       200 and the notice as State lists it; 400 {"error": ...}
//	POST /lifeboat/reset   204
//	GET  /lifeboat/state   200 State
func (e *Emulator) controlHandler() http.Handler {
	type endpoint struct {
		method string
		serve  http.HandlerFunc
	}
	endpoints := map[string]endpoint{
		controlPrefix + "notice": {http.MethodPost, e.postNotice},
		controlPrefix + "reset": {http.MethodPost, func(w http.ResponseWriter, _ *http.Request) {
			e.Reset()
			w.WriteHeader(http.StatusNoContent)
		}},
		controlPrefix + "state": {http.MethodGet, func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, e.State())
		}},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep, ok := endpoints[r.URL.Path]
		switch {
		case !ok:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no control endpoint " + r.URL.Path +
				": POST /lifeboat/notice, POST /lifeboat/reset, GET /lifeboat/state"})
		case r.Method != ep.method:
			w.Header().Set("Allow", ep.method)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": r.URL.Path + " takes " + ep.method})
		default:
			ep.serve(w, r)
		}
	})
}

func (e *Emulator) postNotice(w http.ResponseWriter, r *http.Request) {
	spec, err := DecodeNotice(r.Body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	n, err := e.scheduleSpec(spec)
	switch {
	case errors.Is(err, ErrClosed):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrUnsupportedNotice):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, n)
	}
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
