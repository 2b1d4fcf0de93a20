package resources

import (
	"strings"
	"testing"
)

func TestCheckPrimaryURL(t *testing.T) {
	for _, tc := range []struct {
		url, wantErr string
	}{
		{"http://127.0.0.1:9354", ""},
		{"https://primary.example", ""},
		{"https://primary.example/zonegit/", ""},
		{"ftp://primary.example", `scheme "ftp"`},
		{"primary.example:9354", "scheme"},
		{"http://", "no host"},
		{"https://primary.example/?a=b", "query or fragment"},
		{"http://[::1", "not a URL"},
	} {
		err := CheckPrimaryURL(tc.url)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tc.url, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want one containing %q", tc.url, err, tc.wantErr)
		}
	}
}
