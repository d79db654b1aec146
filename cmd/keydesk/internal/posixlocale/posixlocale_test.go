package posixlocale

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoLocaleComplaint runs the real keydesk under locales Fyne cannot
// parse and wants nothing on stderr from a command that prints nothing
// there.
func TestNoLocaleComplaint(t *testing.T) {
	bin := t.TempDir() + "/keydesk"
	if out, err := exec.Command("go", "build", "-o", bin, "../..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, env := range [][]string{
		{"LANG=C.UTF-8"}, {"LC_ALL=C.utf8"}, {"LANG=POSIX.UTF-8"}, {"LANG=C"}, {"LANG=en_GB.UTF-8"}, {"LC_ALL=C.UTF-8", "LANGUAGE=de"},
	} {
		t.Run(strings.Join(env, " "), func(t *testing.T) {
			cmd := exec.Command(bin, "help")
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr: %s", stderr.String())
			}
		})
	}
}
