package libfido2

import (
	"context"

	"github.com/keydesk/keydesk/platform"
)

// Fingerprint management (CTAP 2.1 §6.7, authenticatorBioEnrollment)
// through libfido2's bio API. Each operation opens the key once and first
// asks for the sensor's description, which needs no PIN, so that a key
// without a sensor fails with ErrUnsupported before a PIN is spent on it.

// bioSampleTimeoutMS is how long the key waits for each sample, as
// fido2-token -S -e asks (libfido2 always sends a timeout).
const bioSampleTimeoutMS = 10000

// bioCheck fails with ErrUnsupported on a key without a fingerprint
// sensor (it answers INVALID_COMMAND).
func (d *device) bioCheck(op string) error {
	_, code := d.bioInfo()
	return pinCodeError(op, code, d)
}

// bioUnknown is the error for a template ID the key does not know. CTAP
// 2.1 §6.7.7/§6.7.8 answer it with INVALID_OPTION, which has no kind of
// its own; it is reported as ErrNoCredentials, the nearest kind, with a
// detail naming fingerprints.
func bioUnknown(op string, code int) error {
	return &platform.Error{
		Op: op, Kind: platform.ErrNoCredentials, RetriesLeft: -1, Code: code,
		Detail: "No enrolled fingerprint has that ID.",
	}
}

// Fingerprints lists the enrolled fingerprints (enumerateEnrollments); a
// key without any gives an empty list.
func (k *Key) Fingerprints(ctx context.Context, pin string) ([]platform.Fingerprint, error) {
	const op = "list fingerprints"
	if err := cmNeedPIN(op, pin); err != nil {
		return nil, err
	}
	var fps []platform.Fingerprint
	err := k.session(ctx, op, func(d *device) error {
		if err := d.bioCheck(op); err != nil {
			return err
		}
		var code int
		fps, code = d.bioTemplates(pin)
		if code == cmCodeInvalidOption { // no templates (§6.7.6)
			fps = []platform.Fingerprint{}
			return nil
		}
		return pinCodeError(op, code, d)
	})
	if err != nil {
		return nil, err
	}
	return fps, nil
}

// EnrollFingerprint enrolls a fingerprint: enrollBegin, then
// enrollCaptureNextSample until the key needs no more samples, all on one
// open device. Before each sample the context's Progress hears StageTouch,
// and after it StageSample with the samples still needed. A non-empty
// name is then set (setFriendlyName); should that fail, the fingerprint
// stays enrolled and the returned Fingerprint carries its ID beside the
// error.
//
// Cancelling ctx sends CTAPHID_CANCEL to a key waiting for a sample, then
// cancels the enrollment on the key (cancelCurrentEnrollment) and fails
// with ErrCancelled. A sample not given in time, or refused, fails with
// ErrTimeout (the key answers USER_ACTION_TIMEOUT); the enrollment is
// cancelled on the key then too.
func (k *Key) EnrollFingerprint(ctx context.Context, pin, name string) (platform.Fingerprint, error) {
	const op = "enroll fingerprint"
	ctx = deduplicated(ctx)
	var fp platform.Fingerprint
	if err := cmNeedPIN(op, pin); err != nil {
		return fp, err
	}
	err := k.session(ctx, op, func(d *device) error {
		if err := d.bioCheck(op); err != nil {
			return err
		}
		en, code := newBioEnroller()
		if code != cmCodeOK {
			return pinCodeError(op, code, d)
		}
		defer en.free()

		// failed ends the enrollment on the key, whatever state the
		// failure left it in (the key's answer does not matter then),
		// and forgets the template ID, which names nothing now.
		failed := func(err error) error {
			d.bioCancelEnrollment()
			fp = platform.Fingerprint{}
			return err
		}
		sampleError := func(code int) error {
			if ctx.Err() != nil {
				return failed(cmCancelled(ctx, op, code))
			}
			return failed(pinCodeError(op, code, d))
		}

		platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageTouch})
		d.cancellable(ctx, func() { code = en.begin(d, bioSampleTimeoutMS, pin) })
		if code != cmCodeOK {
			return sampleError(code)
		}
		fp.ID = en.id()
		if len(fp.ID) == 0 {
			return failed(&platform.Error{Op: op, Kind: platform.ErrProtocol, RetriesLeft: -1})
		}
		for {
			if en.lastStatus() == bioStatusDatabaseFull {
				return failed(&platform.Error{Op: op, Kind: platform.ErrKeyStoreFull, RetriesLeft: -1})
			}
			platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageSample, Remaining: en.remaining()})
			if en.remaining() == 0 {
				break
			}
			if ctx.Err() != nil {
				return failed(cmCancelled(ctx, op, 0))
			}
			platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageTouch})
			d.cancellable(ctx, func() { code = en.next(d, bioSampleTimeoutMS) })
			if code != cmCodeOK {
				return sampleError(code)
			}
		}

		if name != "" {
			if code := d.bioSetName(fp.ID, name, pin); code != cmCodeOK {
				return pinCodeError(op, code, d)
			}
			fp.Name = name
		}
		return nil
	})
	return fp, err
}

// RenameFingerprint sets the name of the fingerprint id
// (setFriendlyName). An unknown ID fails with ErrNoCredentials.
func (k *Key) RenameFingerprint(ctx context.Context, pin string, id []byte, name string) error {
	const op = "rename fingerprint"
	if err := cmNeedPIN(op, pin); err != nil {
		return err
	}
	if len(id) == 0 {
		return bioUnknown(op, 0)
	}
	return k.session(ctx, op, func(d *device) error {
		if err := d.bioCheck(op); err != nil {
			return err
		}
		code := d.bioSetName(id, name, pin)
		if code == cmCodeInvalidOption {
			return bioUnknown(op, code)
		}
		return pinCodeError(op, code, d)
	})
}

// DeleteFingerprint removes the fingerprint id (removeEnrollment). An
// unknown ID fails with ErrNoCredentials.
func (k *Key) DeleteFingerprint(ctx context.Context, pin string, id []byte) error {
	const op = "delete fingerprint"
	if err := cmNeedPIN(op, pin); err != nil {
		return err
	}
	if len(id) == 0 {
		return bioUnknown(op, 0)
	}
	return k.session(ctx, op, func(d *device) error {
		if err := d.bioCheck(op); err != nil {
			return err
		}
		code := d.bioRemove(id, pin)
		if code == cmCodeInvalidOption {
			return bioUnknown(op, code)
		}
		return pinCodeError(op, code, d)
	})
}
