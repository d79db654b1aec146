package memstat

import (
	"os"
	"strings"
	"testing"
)

// TestResidentByKind: a real smaps of the idle window (trimmed to a few
// mappings of each kind) sums to the right kinds, the path with a space
// ("SYSV00000000 (deleted)") included.
func TestResidentByKind(t *testing.T) {
	f, err := os.Open("testdata/smaps.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := residentByKind(f, "/opt/keydesk/keydesk")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		memProgram: 14376, memAnon: 304, memCHeap: 15524, memShared: 3120,
		memSoftGL: 46764 + 5640, memLibs: 1456, memElsewise: 8 + 40,
	}
	if len(got) != len(want) {
		t.Fatalf("kinds %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d kB, want %d", k, got[k], v)
		}
	}
	text := formatResident(got)
	if first, _, _ := strings.Cut(text, "\n"); !strings.Contains(first, memSoftGL) || !strings.Contains(first, "51.2 MB") {
		t.Errorf("the largest kind is not listed first: %q", first)
	}
}

func TestResidentByKindShouldRefuseABadRss(t *testing.T) {
	if _, err := residentByKind(strings.NewReader("00400000-00401000 r--p 00000000 fe:00 1 /bin/x\nRss: lots kB\n"), "/bin/x"); err == nil {
		t.Fatal("accepted")
	}
}
