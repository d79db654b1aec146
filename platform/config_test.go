package platform

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExtraDevices(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		file    string // "" for no file
		want    []string
		wantErr string
	}{
		{name: "ShouldBeEmptyWithoutEnvOrFile", want: nil},
		{name: "ShouldReadTheEnvironment", env: "/dev/a:/dev/b", want: []string{"/dev/a", "/dev/b"}},
		{name: "ShouldReadTheFile", file: `{"extraDevices": ["/dev/c"], "profiles": []}`, want: []string{"/dev/c"}},
		{name: "ShouldJoinBothWithoutRepeats", env: "/dev/a::/dev/c", file: `{"extraDevices": ["/dev/c", "/dev/d"]}`, want: []string{"/dev/a", "/dev/c", "/dev/d"}},
		{name: "ShouldNameABrokenFile", file: `{"extraDevices": [`, wantErr: "config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			if tt.file != "" {
				os.WriteFile(path, []byte(tt.file), 0o600)
			}
			t.Setenv(ConfigEnv, path)
			t.Setenv(ExtraDevicesEnv, tt.env)
			got, err := ExtraDevices()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v %v, want %v", got, err, tt.want)
			}
		})
	}
}

func TestConfigPathDefault(t *testing.T) {
	t.Setenv(ConfigEnv, "")
	t.Setenv("XDG_CONFIG_HOME", "/tmp/xdg")
	if p, err := ConfigPath(); err != nil || p != "/tmp/xdg/keydesk/config.json" {
		t.Fatalf("ConfigPath() = %q, %v", p, err)
	}
}
