package fakepbi

import (
	"encoding/json"
	"net/http"
	"strings"
)

// keyVaultSecret serves GET /secrets/{name}[/{version}] as Azure Key Vault
// does, including its authentication challenge.
func (s *Server) keyVaultSecret(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-ms-request-id", newUUID())
	switch s.checkTokenFor(r.Header.Get("Authorization"), KeyVaultScope) {
	case tokenMissing:
		w.Header().Set("WWW-Authenticate", `Bearer authorization="`+s.AuthorityHost()+s.opts.TenantID+`", resource="https://vault.azure.net"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{
			"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})
		return
	case tokenExpired:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{
			"code": "Unauthorized", "message": "AKV10022: Invalid audience or token expired."}})
		return
	}
	name := r.PathValue("name")
	value, ok := s.opts.Secrets[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{
			"code": "SecretNotFound", "message": "A secret with (name/id) " + name + " was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"}})
		return
	}
	version := r.PathValue("version")
	if version == "" {
		version = "0123456789abcdef0123456789abcdef"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"value":      value,
		"id":         strings.TrimRight(s.URL(), "/") + "/secrets/" + name + "/" + version,
		"attributes": map[string]any{"enabled": true, "recoveryLevel": "Recoverable+Purgeable"},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
