package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// ExtraDevicesEnv lists device paths the operating system does not
// enumerate, separated by ':' — such as the software key behind the vhid
// shim (/dev/keydesk-vhidN). They are listed like any other key when
// present.
const ExtraDevicesEnv = "KEYDESK_EXTRA_DEVICES"

// ConfigEnv overrides where the configuration file is.
const ConfigEnv = "KEYDESK_CONFIG"

// Config is the part of Keydesk's configuration file the platform layer
// reads. Other parts of Keydesk keep their settings in the same file;
// fields this struct does not know are ignored.
type Config struct {
	// ExtraDevices are device paths to list besides those the operating
	// system finds.
	ExtraDevices []string `json:"extraDevices,omitempty"`
}

// ConfigPath returns the configuration file's path: $KEYDESK_CONFIG, or
// keydesk/config.json in the user's configuration directory
// (~/.config on Linux).
func ConfigPath() (string, error) {
	if p := os.Getenv(ConfigEnv); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the configuration directory: %w", err)
	}
	return filepath.Join(dir, "keydesk", "config.json"), nil
}

// LoadConfig reads the configuration file at path. A missing file is an
// empty configuration; a file that is not valid JSON is an error naming
// the file, never silently ignored.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read configuration: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("configuration file %s: %w", path, err)
	}
	return c, nil
}

// ExtraDevicesFromEnv returns the paths in $KEYDESK_EXTRA_DEVICES.
func ExtraDevicesFromEnv() []string {
	var out []string
	for _, p := range filepath.SplitList(os.Getenv(ExtraDevicesEnv)) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ExtraDevices returns the extra device paths from the environment, then
// from the configuration file, without repeats.
func ExtraDevices() ([]string, error) {
	out := ExtraDevicesFromEnv()
	path, err := ConfigPath()
	if err != nil {
		return out, err
	}
	c, err := LoadConfig(path)
	if err != nil {
		return out, err
	}
	for _, p := range c.ExtraDevices {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}
