package ui

import (
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/keydesk/keydesk/platform/softkey"
)

// fingerprintsOnKey are the names of k's fingerprints.
func fingerprintsOnKey(t *testing.T, k *testKey) []string {
	t.Helper()
	fps, err := direct(k).Fingerprints(t.Context(), testPIN)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, f := range fps {
		names = append(names, f.Name)
	}
	return names
}

// touchSample touches k's sensor once it waits, and waits for the
// dialog to say how many samples are left.
func (h *harness) touchSample(k *testKey, e *enrollFingerprint, want string) {
	h.t.Helper()
	h.eventually("the sensor touched", func() bool { return k.signal.Touch() > 0 })
	h.eventually("the dialog says "+want, func() bool { return e.sample.Text == want })
}

// TestFingerprintsEnrollRenameDelete: a key with a sensor shows the card;
// enrolling asks for the PIN once, then counts the samples down ("Touch
// the sensor: N more", with the progress bar) and lists the new
// fingerprint; renaming and deleting (after a confirmation) change the
// key and the list, without asking for the PIN again.
func TestFingerprintsEnrollRenameDelete(t *testing.T) {
	h := newHarness(t)
	k, _ := h.newCordedKey(1, softkey.Config{}, 10*time.Second)
	setTestPIN(t, k)
	d := h.openKey(k)
	c := d.cards.fps
	h.ui(func() {
		if !c.card.Visible() || !c.add.Visible() || c.add.Disabled() {
			t.Fatalf("card shown %v, add shown %v disabled %v", c.card.Visible(), c.add.Visible(), c.add.Disabled())
		}
		test.Tap(c.add)
	})
	e := c.enroll
	h.ui(func() {
		test.Type(e.name, "right thumb")
		test.Tap(e.start)
	})
	h.answerPIN(d, nil, testPIN)
	h.eventually("the first touch asked", func() bool { return e.sample.Text == "Touch the sensor now." })
	h.touchSample(k, e, "Touch the sensor: 3 more")
	h.ui(func() {
		if !e.progress.Visible() || e.progress.Value != 0.25 {
			t.Errorf("after one sample: bar shown %v at %v", e.progress.Visible(), e.progress.Value)
		}
	})
	h.touchSample(k, e, "Touch the sensor: 2 more")
	h.touchSample(k, e, "Touch the sensor: 1 more")
	h.eventually("the last sample touched", func() bool { return k.signal.Touch() > 0 })
	h.eventually("the fingerprint added and listed", func() bool { return e.added && c.fps != nil && !d.cards.busy })
	h.ui(func() {
		if !strings.Contains(e.sample.Text, `"right thumb" was added`) || e.progress.Value != 1 || e.start.Visible() {
			t.Errorf("done: %q, bar %v, start shown %v", e.sample.Text, e.progress.Value, e.start.Visible())
		}
		if got := visibleLabels(c.list); !slices.Equal(got, []string{"right thumb"}) {
			t.Errorf("list %q", got)
		}
		test.Tap(e.close)
		if c.enroll != nil {
			t.Error("Done left the dialog open")
		}
		test.Tap(c.renameBtns[0])
		c.renameEntry.SetText("left thumb")
		c.renameDlg.Submit()
	})
	h.eventually("renamed", func() bool { return !d.cards.busy && slices.Equal(visibleLabels(c.list), []string{"left thumb"}) })
	if got := fingerprintsOnKey(t, k); !slices.Equal(got, []string{"left thumb"}) {
		t.Errorf("the key holds %q", got)
	}
	h.ui(func() {
		test.Tap(c.deleteBtns[0])
		c.confirm.Dismiss()
	})
	if got := fingerprintsOnKey(t, k); len(got) != 1 {
		t.Fatalf("a cancelled delete left %q", got)
	}
	h.ui(func() {
		test.Tap(c.deleteBtns[0])
		c.confirm.Confirm()
	})
	h.eventually("deleted", func() bool {
		return !d.cards.busy && slices.Equal(visibleLabels(c.list), []string{"No fingerprint is enrolled on this key."})
	})
	h.ui(func() {
		if d.cards.asks != 1 {
			t.Errorf("the PIN was asked %d times, want once", d.cards.asks)
		}
	})
	if got := fingerprintsOnKey(t, k); len(got) != 0 {
		t.Errorf("the key holds %q", got)
	}
}

// TestFingerprintsWrongPINAndCancel: a wrong PIN asks again with the
// tries left; cancelling the dialog lists nothing; cancelling an
// enrollment after a sample adds nothing and shows no progress as done.
func TestFingerprintsWrongPINAndCancel(t *testing.T) {
	h := newHarness(t)
	k, _ := h.newCordedKey(1, softkey.Config{}, 10*time.Second)
	setTestPIN(t, k)
	addFingerprint(t, k, "index")
	d := h.openKey(k)
	c := d.cards.fps
	h.ui(func() { test.Tap(c.load) })
	first := h.answerPIN(d, nil, "999999")
	var again *pinAsk
	h.eventually("asked again", func() bool { again = d.cards.ask; return again != nil && again != first })
	h.ui(func() {
		if !strings.Contains(again.text.Text, "7 tries are left") {
			t.Errorf("second ask says %q", again.text.Text)
		}
		test.Tap(again.cancel)
	})
	h.eventually("the dialog gone", func() bool { return d.cards.ask == nil && !d.cards.busy })
	h.ui(func() {
		if c.fps != nil || c.status.Visible() {
			t.Errorf("after Cancel: listed %v, status %q", c.fps != nil, c.status.Text)
		}
		test.Tap(c.add)
		test.Tap(c.enroll.start)
	})
	e := c.enroll
	h.answerPIN(d, again, testPIN)
	h.touchSample(k, e, "Touch the sensor: 3 more")
	h.ui(func() { test.Tap(e.close) })
	h.eventually("the enrollment cancelled", func() bool { return !e.running && e.problem.Visible() })
	h.ui(func() {
		if e.problem.Text != "Cancelled: no fingerprint was added." || e.progress.Visible() || e.sample.Visible() || e.added {
			t.Errorf("after Cancel: %q, bar shown %v, sample %q shown %v", e.problem.Text, e.progress.Visible(), e.sample.Text, e.sample.Visible())
		}
		if e.start.Disabled() {
			t.Error("cannot start again")
		}
	})
	if got := fingerprintsOnKey(t, k); !slices.Equal(got, []string{"index"}) {
		t.Errorf("the key holds %q", got)
	}
}

// TestFingerprintsKeyUnpluggedMidEnroll: pulling the key out between two
// samples says no fingerprint was added and why; nothing shows as done.
func TestFingerprintsKeyUnpluggedMidEnroll(t *testing.T) {
	h := newHarness(t)
	k, cord := h.newCordedKey(1, softkey.Config{}, 10*time.Second)
	setTestPIN(t, k)
	d := h.openKey(k)
	c := d.cards.fps
	h.ui(func() { test.Tap(c.add) })
	e := c.enroll
	h.ui(func() { test.Tap(e.start) })
	h.answerPIN(d, nil, testPIN)
	h.touchSample(k, e, "Touch the sensor: 3 more")
	h.touchSample(k, e, "Touch the sensor: 2 more")
	cord.pull()
	h.eventually("the failure told", func() bool { return !e.running && e.problem.Visible() })
	h.ui(func() {
		if !strings.HasPrefix(e.problem.Text, "No fingerprint was added: Keydesk lost contact") || e.progress.Visible() || e.added {
			t.Errorf("after the unplug: %q, bar shown %v", e.problem.Text, e.progress.Visible())
		}
	})
	h.eventually("the page and the dialog turned off", func() bool {
		return d.gone && e.start.Disabled() && c.add.Disabled() && strings.Contains(e.problem.Text, "lost contact")
	})
	if got := fingerprintsOnKey(t, k); len(got) != 0 {
		t.Errorf("the key holds %q", got)
	}
}

// TestFingerprintsCardOnlyWithASensor: a key without a sensor has no
// fingerprint card; one with a sensor and no PIN offers to set the PIN.
func TestFingerprintsCardOnlyWithASensor(t *testing.T) {
	h := newHarness(t)
	k, _ := h.newCordedKey(1, softkey.Config{NoBiometrics: true}, 10*time.Second)
	d := h.openKey(k)
	h.ui(func() {
		if d.cards.fps.card.Visible() {
			t.Error("a key without a sensor shows the fingerprint card")
		}
		test.Tap(findButton(d.content, "All keys"))
	})
	h.usb.unplug(k)
	k2, _ := h.newCordedKey(2, softkey.Config{}, 10*time.Second)
	d = h.openKey(k2)
	c := d.cards.fps
	h.ui(func() {
		if !c.card.Visible() || !c.setPIN.Visible() || c.add.Visible() || !strings.Contains(c.intro.Text, "needs a PIN") {
			t.Errorf("no PIN: card %v, set-PIN %v, add %v, intro %q", c.card.Visible(), c.setPIN.Visible(), c.add.Visible(), c.intro.Text)
		}
		if got := d.fact("Fingerprint reader"); got != "yes" {
			t.Errorf("fingerprint reader row %q", got)
		}
	})
}
