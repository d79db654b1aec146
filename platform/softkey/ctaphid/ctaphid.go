// Package ctaphid implements the CTAPHID transport of a FIDO2 authenticator:
// it turns 64-byte HID reports into CTAP messages and back, the way a USB
// security key does, so that libfido2 cannot tell the software key from a
// physical one.
//
// Specification: §11.2. USB Human Interface Device (USB HID)
// (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#usb)
//
// One Device is one key. Every opened file descriptor of the emulated hidraw
// node is a Port: a separate host that shares the key's channels, its single
// transaction slot and its lock, but receives only the responses to its own
// requests.
package ctaphid

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"sync"
	"time"
)

// ReportSize is the size of every CTAPHID packet: the HID report size of a
// full-speed USB key, which libfido2 reads from the report descriptor.
const ReportSize = 64

// BroadcastCID is the channel on which CTAPHID_INIT allocates new channels
// (§11.2.3 Concurrency and channels); no other command may use it.
const BroadcastCID = 0xffffffff

// CTAPHID commands (§11.2.9). On the wire the init-packet bit 0x80 is set in
// addition to these values.
const (
	// CmdPing is CTAPHID_PING (§11.2.9.1.4): the device echoes the payload.
	CmdPing = 0x01
	// CmdMsg is CTAPHID_MSG (§11.2.9.1.1): a U2F/CTAP1 APDU.
	CmdMsg = 0x03
	// CmdLock is CTAPHID_LOCK (§11.2.9.2.2): exclusive access for one channel.
	CmdLock = 0x04
	// CmdInit is CTAPHID_INIT (§11.2.9.1.3): channel allocation and resync.
	CmdInit = 0x06
	// CmdWink is CTAPHID_WINK (§11.2.9.2.1): identify the device to the user.
	CmdWink = 0x08
	// CmdCBOR is CTAPHID_CBOR (§11.2.9.1.2): a CTAP2 command.
	CmdCBOR = 0x10
	// CmdCancel is CTAPHID_CANCEL (§11.2.9.1.5): abort the channel's CBOR request.
	CmdCancel = 0x11
	// CmdKeepalive is CTAPHID_KEEPALIVE (§11.2.9.1.7), sent by the device
	// while a request is being processed.
	CmdKeepalive = 0x3B
	// CmdError is CTAPHID_ERROR (§11.2.9.1.6): a one-byte error code.
	CmdError = 0x3F
)

// CTAPHID_ERROR codes (§11.2.9.1.6).
const (
	// ErrInvalidCmd is ERR_INVALID_CMD: the command is not supported.
	ErrInvalidCmd = 0x01
	// ErrInvalidPar is ERR_INVALID_PAR: a parameter is out of range.
	ErrInvalidPar = 0x02
	// ErrInvalidLen is ERR_INVALID_LEN: the message length is invalid.
	ErrInvalidLen = 0x03
	// ErrInvalidSeq is ERR_INVALID_SEQ: a packet arrived out of sequence.
	ErrInvalidSeq = 0x04
	// ErrMsgTimeout is ERR_MSG_TIMEOUT: the next packet of a message did not
	// arrive in time.
	ErrMsgTimeout = 0x05
	// ErrChannelBusy is ERR_CHANNEL_BUSY: another channel owns the device.
	ErrChannelBusy = 0x06
	// ErrLockRequired is ERR_LOCK_REQUIRED: the command needs a channel lock.
	ErrLockRequired = 0x0A
	// ErrInvalidChannel is ERR_INVALID_CHANNEL: the CID is reserved or was
	// never allocated.
	ErrInvalidChannel = 0x0B
	// ErrOther is ERR_OTHER: an unspecified error.
	ErrOther = 0x7F
)

// CTAPHID_KEEPALIVE status codes (§11.2.9.1.7).
const (
	// StatusProcessing is STATUS_PROCESSING: the authenticator is still working.
	StatusProcessing = 1
	// StatusUPNeeded is STATUS_UPNEEDED: the authenticator waits for the user
	// to touch it.
	StatusUPNeeded = 2
)

// Capability flags of the CTAPHID_INIT response (§11.2.9.1.3).
const (
	// CapWink is CAPABILITY_WINK: CTAPHID_WINK is implemented.
	CapWink = 0x01
	// CapCBOR is CAPABILITY_CBOR: CTAPHID_CBOR is implemented.
	CapCBOR = 0x04
	// CapNMSG is CAPABILITY_NMSG: CTAPHID_MSG is NOT implemented.
	CapNMSG = 0x08
)

const (
	initDataLen = ReportSize - 7 // CID, CMD, BCNTH, BCNTL
	contDataLen = ReportSize - 5 // CID, SEQ
	// maxPayload is the largest message 128 continuation packets can carry;
	// the 7-bit sequence number makes anything longer unrepresentable.
	maxPayload = initDataLen + 128*contDataLen

	protocolVersion = 2  // CTAPHID protocol version of the INIT response
	nonceLen        = 8  // CTAPHID_INIT nonce
	maxLockSeconds  = 10 // §11.2.9.2.2

	// defaultMaxChannels bounds channel state: libfido2 allocates a fresh
	// channel on every fido_dev_open and never releases it, so a long-lived
	// key would otherwise grow without limit.
	defaultMaxChannels = 4096
)

// Handler processes complete CTAP messages for a Device.
type Handler interface {
	// CBOR handles one CTAPHID_CBOR request: req is the command byte followed by CBOR
	// parameters; the result is the CTAP status byte followed by the CBOR response.
	// keepalive reports the current status (StatusProcessing or StatusUPNeeded); the
	// Device sends KEEPALIVE packets carrying the last reported status every 100 ms
	// (configurable) while CBOR runs. ctx is cancelled by CTAPHID_CANCEL on the
	// channel, by CTAPHID_INIT resync on the channel, or when the Device closes.
	CBOR(ctx context.Context, req []byte, keepalive func(status byte)) []byte
	// Wink is called for CTAPHID_WINK.
	Wink()
}

// MSGHandler is optionally implemented by a Handler that speaks U2F. If the
// Handler implements it, CTAPHID_MSG is delivered to MSG (U2F APDU in,
// response APDU out) and CapNMSG is not advertised; otherwise CTAPHID_MSG
// gets ERR_INVALID_CMD and CapNMSG is set, so that hosts do not fall back to
// U2F.
type MSGHandler interface {
	// MSG handles one CTAPHID_MSG request. ctx is cancelled like CBOR's.
	MSG(ctx context.Context, apdu []byte) []byte
}

// Options configures a Device. The zero value gives the behaviour of a
// typical USB key.
type Options struct {
	// MaxMessageSize is the largest request the Device assembles; longer
	// BCNT values get ERR_INVALID_LEN. Zero means 7609, the largest message
	// 64-byte reports can carry (57 + 128*59); larger values are clamped to it.
	MaxMessageSize int
	// TransactionTimeout is the longest gap allowed between the packets of
	// one request before the Device gives up with ERR_MSG_TIMEOUT, so that a
	// crashed host cannot keep the key busy. Zero means 500 ms.
	TransactionTimeout time.Duration
	// KeepaliveInterval is the period of CTAPHID_KEEPALIVE packets while a
	// request is processed. Zero means 100 ms, the maximum the specification
	// allows.
	KeepaliveInterval time.Duration
	// Version is the major, minor and build device version reported in the
	// CTAPHID_INIT response.
	Version [3]byte
	// Rand is the source of channel IDs. Nil means crypto/rand, so that one
	// host cannot guess another's channel.
	Rand io.Reader
}

// Device is one emulated CTAPHID key. It is safe for concurrent use.
type Device struct {
	h    Handler
	msg  MSGHandler // nil when h does not implement MSGHandler
	opts Options
	caps byte

	// ctx is the parent of every transaction's context, cancelled by Close.
	ctx       context.Context
	cancelAll context.CancelFunc
	// wg counts every goroutine the Device starts, so Close can wait for them.
	wg sync.WaitGroup
	// handlerMu serializes Handler calls: a resync or a closed port releases
	// the transaction slot before the aborted handler has returned, and the
	// engine behind the Handler must never see two requests at once.
	handlerMu sync.Mutex

	// Lock order: Port.sendMu before mu. mu is never held while calling
	// send or the Handler, so a host that stops reading stalls only itself.
	mu       sync.Mutex
	closed   bool
	ports    map[*Port]struct{}
	channels map[uint32]uint64 // allocated CID -> last use, for eviction
	clock    uint64            // use counter behind channels' values
	asm      *assembly         // the request being assembled, if any
	txn      *transaction      // the request being processed, if any
	lockCID  uint32            // channel holding CTAPHID_LOCK; 0 if none
	lockPort *Port
	lockEnd  time.Time

	// Test hooks.
	now         func() time.Time // clock for deadlines: lock expiry, transaction timeout
	maxChannels int
}

// assembly is a request whose continuation packets are still arriving.
// Only one exists device-wide: the channel that gets its init packet through
// keeps the device busy for every other channel (§11.2.5.1 Transaction
// atomicity).
type assembly struct {
	port     *Port
	cid      uint32
	cmd      byte
	need     int // BCNT
	buf      []byte
	seq      byte // next expected sequence number
	deadline time.Time
	timer    *time.Timer
}

// transaction is a CBOR or MSG request handed to the Handler.
type transaction struct {
	port   *Port
	cid    uint32
	cmd    byte
	cancel context.CancelFunc
	// aborted is closed when the transaction loses the device without an
	// answer (resync, port or device close); its response is then dropped.
	aborted chan struct{}
	// keepalive fires every KeepaliveInterval while the Handler runs; a
	// timer rather than a goroutine, so that a quick request costs no
	// thread wake-up for it. Guarded by Device.mu.
	keepalive *time.Timer
	status    byte // guarded by Device.mu
}

// message is one CTAPHID message to send.
type message struct {
	cid  uint32
	cmd  byte
	data []byte
}

// NewDevice returns a Device that passes complete requests to h.
func NewDevice(h Handler, opts Options) *Device {
	if opts.MaxMessageSize <= 0 || opts.MaxMessageSize > maxPayload {
		opts.MaxMessageSize = maxPayload
	}
	if opts.TransactionTimeout <= 0 {
		opts.TransactionTimeout = 500 * time.Millisecond
	}
	if opts.KeepaliveInterval <= 0 {
		opts.KeepaliveInterval = 100 * time.Millisecond
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	d := &Device{
		h:           h,
		opts:        opts,
		caps:        CapWink | CapCBOR,
		ports:       make(map[*Port]struct{}),
		channels:    make(map[uint32]uint64),
		now:         time.Now,
		maxChannels: defaultMaxChannels,
	}
	if m, ok := h.(MSGHandler); ok {
		d.msg = m
	} else {
		d.caps |= CapNMSG
	}
	d.ctx, d.cancelAll = context.WithCancel(context.Background())
	return d
}

// Port is one host attached to a Device, like one open file descriptor of a
// hidraw node.
type Port struct {
	d    *Device
	send func(report []byte)
	// sendAll, when set, takes all the reports of one message at once, so
	// that a transport can hand them to the kernel in one call.
	sendAll func(reports [][]byte)
	// pending is the Handler call started by the report being received,
	// handed to the caller of ReceiveInline. Guarded by sendMu.
	pending func()

	// sendMu makes send calls sequential and keeps the reports of one
	// message together; it is held while a received packet is processed so
	// that a response cannot overtake the one before it.
	sendMu sync.Mutex
	closed bool // guarded by sendMu
}

// Attach connects one host (one opened file descriptor); send receives each 64-byte
// device-to-host report, called from one goroutine at a time, in order. The
// report slice is not reused by the Device.
func (d *Device) Attach(send func(report []byte)) *Port {
	return d.attach(&Port{d: d, send: send})
}

// AttachBatch is Attach for a host that takes the reports of a message
// together: sendAll gets every report of one message, in order, in one
// call. Hosts reached through the kernel pay per system call and per
// wake-up, and a 1 kB response is 19 reports.
func (d *Device) AttachBatch(sendAll func(reports [][]byte)) *Port {
	return d.attach(&Port{d: d, sendAll: sendAll})
}

func (d *Device) attach(p *Port) *Port {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		p.closed = true
		return p
	}
	d.ports[p] = struct{}{}
	return p
}

// Receive processes one host-to-device report: 64 bytes, or 65 bytes whose
// first byte is the zero report ID that libfido2 writes. Other sizes are
// ignored, as a HID device never sees them. Receive does not retain report,
// and it returns after any immediate response has been passed to send.
func (p *Port) Receive(report []byte) {
	if run := p.ReceiveInline(report); run != nil {
		go run()
	}
}

// ReceiveInline is Receive for a host loop that runs the Handler itself:
// when report completes a request for the Handler, the call is returned
// as run instead of being started in a new goroutine, and the caller must
// call it. A reader that runs quick requests inline answers them without
// waking another thread; while run works, the caller must keep reading
// (from another goroutine) for CANCEL to get through.
func (p *Port) ReceiveInline(report []byte) (run func()) {
	switch {
	case len(report) == ReportSize:
	case len(report) == ReportSize+1 && report[0] == 0:
		report = report[1:]
	default:
		return nil
	}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if p.closed {
		return nil
	}
	reply, wink := p.d.receive(p, report)
	if wink {
		p.d.h.Wink()
	}
	if reply != nil {
		p.write(*reply)
	}
	run, p.pending = p.pending, nil
	return run
}

// Close detaches the port: its pending request and running transaction are
// abandoned (the Handler's context is cancelled) and a lock it took is
// released. After Close returns, send is not called again; Close waits for
// a send in progress to return.
func (p *Port) Close() {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	d := p.d
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.ports, p)
	if d.asm != nil && d.asm.port == p {
		d.dropAssembly()
	}
	if d.txn != nil && d.txn.port == p {
		d.abortTransaction()
	}
	if d.lockPort == p {
		d.lockCID, d.lockPort = 0, nil
	}
}

// Close cancels every transaction, detaches every port and waits for all
// goroutines of the Device, including running Handler calls, to return. It
// must not be called from a Handler method.
func (d *Device) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		d.wg.Wait()
		return
	}
	d.closed = true
	if d.asm != nil {
		d.dropAssembly()
	}
	if d.txn != nil {
		d.abortTransaction()
	}
	d.cancelAll()
	ports := make([]*Port, 0, len(d.ports))
	for p := range d.ports {
		ports = append(ports, p)
	}
	d.mu.Unlock()
	for _, p := range ports {
		p.Close()
	}
	d.wg.Wait()
}

// write sends m as a sequence of reports. The caller holds p.sendMu.
func (p *Port) write(m message) {
	reports := fragment(m)
	if p.sendAll != nil {
		p.sendAll(reports)
		return
	}
	for _, r := range reports {
		p.send(r)
	}
}

// fragment splits m into an init packet and continuation packets, zero
// padded (§11.2.4). len(m.data) must not exceed maxPayload.
func fragment(m message) [][]byte {
	n := 1
	if len(m.data) > initDataLen {
		n += (len(m.data) - initDataLen + contDataLen - 1) / contDataLen
	}
	backing := make([]byte, n*ReportSize)
	out := make([][]byte, n)
	for i := range out {
		r := backing[i*ReportSize : (i+1)*ReportSize : (i+1)*ReportSize]
		binary.BigEndian.PutUint32(r, m.cid)
		out[i] = r
	}
	out[0][4] = m.cmd | 0x80
	binary.BigEndian.PutUint16(out[0][5:], uint16(len(m.data)))
	k := copy(out[0][7:], m.data)
	for i := 1; i < n; i++ {
		out[i][4] = byte(i - 1)
		k += copy(out[i][5:], m.data[k:])
	}
	return out
}

func errorMessage(cid uint32, code byte) *message {
	return &message{cid: cid, cmd: CmdError, data: []byte{code}}
}

// receive runs the packet state machine for one 64-byte report from p. It
// returns the immediate response, if any, and whether Wink must be called.
func (d *Device) receive(p *Port, r []byte) (reply *message, wink bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, false
	}
	cid := binary.BigEndian.Uint32(r)
	if r[4]&0x80 == 0 {
		return d.continuation(p, cid, r[4], r[5:])
	}
	return d.initPacket(p, cid, r[4]&^0x80, int(binary.BigEndian.Uint16(r[5:])), r[7:])
}

func (d *Device) continuation(p *Port, cid uint32, seq byte, data []byte) (*message, bool) {
	a := d.asm
	if a == nil || a.cid != cid || a.port != p {
		// §11.2.5.4: spurious continuation packets are ignored. One from
		// another host is spurious too: its response could not be routed.
		return nil, false
	}
	if seq != a.seq {
		d.dropAssembly()
		return errorMessage(cid, ErrInvalidSeq), false
	}
	a.seq++
	a.buf = append(a.buf, data[:min(a.need-len(a.buf), len(data))]...)
	if len(a.buf) < a.need {
		a.deadline = d.now().Add(d.opts.TransactionTimeout)
		return nil, false
	}
	d.dropAssembly()
	return d.dispatch(p, cid, a.cmd, a.buf)
}

func (d *Device) initPacket(p *Port, cid uint32, cmd byte, bcnt int, data []byte) (*message, bool) {
	if cmd == CmdCancel {
		// §11.2.9.1.5: the authenticator never replies to CANCEL, and a
		// CANCEL on a channel with no CBOR request being processed (idle,
		// still assembling, another channel, or no channel at all) is
		// ignored.
		if d.txn != nil && d.txn.cid == cid {
			d.txn.cancel()
		}
		return nil, false
	}
	// §11.2.3 (Concurrency and channels): CID 0 is reserved, the broadcast
	// CID is only for INIT, and any other CID must have been allocated.
	if cid == 0 || (cid == BroadcastCID && cmd != CmdInit) {
		return errorMessage(cid, ErrInvalidChannel), false
	}
	if cid == BroadcastCID {
		// Allocation touches no transaction state, so it is served even
		// while another channel is busy or holds the lock: a new host must
		// be able to open the key and learn that it is busy.
		if bcnt != nonceLen {
			return errorMessage(cid, ErrInvalidLen), false
		}
		newCID, ok := d.allocate()
		if !ok {
			return errorMessage(cid, ErrOther), false
		}
		return d.initResponse(cid, newCID, data[:nonceLen]), false
	}
	if _, ok := d.channels[cid]; !ok {
		return errorMessage(cid, ErrInvalidChannel), false
	}
	d.clock++
	d.channels[cid] = d.clock

	if a := d.asm; a != nil && a.cid == cid {
		// A new init packet on the channel being assembled ends that
		// message: INIT resynchronizes (§11.2.5.3 Transaction abort and
		// re-synchronization); the specification says nothing about other
		// commands, so they fail as out of sequence, as on SoloKeys and
		// OpenSK.
		d.dropAssembly()
		if cmd != CmdInit {
			return errorMessage(cid, ErrInvalidSeq), false
		}
	}
	if d.lockedByOther(cid) {
		return errorMessage(cid, ErrChannelBusy), false
	}
	if d.asm != nil {
		return errorMessage(cid, ErrChannelBusy), false
	}
	if cmd == CmdInit {
		if t := d.txn; t != nil && t.cid != cid {
			return errorMessage(cid, ErrChannelBusy), false
		}
		if bcnt != nonceLen {
			return errorMessage(cid, ErrInvalidLen), false
		}
		// §11.2.9.1.3: INIT on an allocated channel discards its current
		// transaction and answers on the same channel with the same CID.
		if d.txn != nil {
			d.abortTransaction()
		}
		return d.initResponse(cid, cid, data[:nonceLen]), false
	}
	// §11.2.3 and §11.2.5.1 (Transaction atomicity): one transaction at a
	// time, and requests from other channels fail at once with a busy
	// error. A second request on the busy channel is refused too, rather
	// than queued: the host is still owed a response, and only CANCEL or
	// INIT may interrupt it.
	if d.txn != nil {
		return errorMessage(cid, ErrChannelBusy), false
	}
	switch cmd {
	case CmdPing, CmdWink, CmdLock, CmdCBOR:
	case CmdMsg:
		if d.msg == nil {
			return errorMessage(cid, ErrInvalidCmd), false
		}
	default:
		// Refused before assembly so that a long unknown message does not
		// occupy the device until its last packet.
		return errorMessage(cid, ErrInvalidCmd), false
	}
	if bcnt > d.opts.MaxMessageSize {
		return errorMessage(cid, ErrInvalidLen), false
	}
	if bcnt <= initDataLen {
		return d.dispatch(p, cid, cmd, bytes.Clone(data[:bcnt]))
	}
	a := &assembly{
		port:     p,
		cid:      cid,
		cmd:      cmd,
		need:     bcnt,
		buf:      append(make([]byte, 0, bcnt), data...),
		deadline: d.now().Add(d.opts.TransactionTimeout),
	}
	d.asm = a
	d.armTimer(a, d.opts.TransactionTimeout)
	return nil, false
}

// dispatch handles a complete request. The caller holds d.mu.
func (d *Device) dispatch(p *Port, cid uint32, cmd byte, data []byte) (*message, bool) {
	switch cmd {
	case CmdPing:
		return &message{cid: cid, cmd: CmdPing, data: data}, false
	case CmdWink:
		return &message{cid: cid, cmd: CmdWink}, true
	case CmdLock:
		if len(data) != 1 {
			return errorMessage(cid, ErrInvalidLen), false
		}
		if data[0] > maxLockSeconds {
			return errorMessage(cid, ErrInvalidPar), false
		}
		if data[0] == 0 {
			d.lockCID, d.lockPort = 0, nil
		} else {
			d.lockCID, d.lockPort = cid, p
			d.lockEnd = d.now().Add(time.Duration(data[0]) * time.Second)
		}
		return &message{cid: cid, cmd: CmdLock}, false
	case CmdCBOR, CmdMsg:
		if len(data) == 0 {
			// Nothing to hand over: there is not even a command byte.
			return errorMessage(cid, ErrInvalidLen), false
		}
		d.startTransaction(p, cid, cmd, data)
		return nil, false
	}
	return errorMessage(cid, ErrInvalidCmd), false
}

func (d *Device) initResponse(cid, newCID uint32, nonce []byte) *message {
	b := make([]byte, 0, 17)
	b = append(b, nonce...)
	b = binary.BigEndian.AppendUint32(b, newCID)
	b = append(b, protocolVersion, d.opts.Version[0], d.opts.Version[1], d.opts.Version[2], d.caps)
	return &message{cid: cid, cmd: CmdInit, data: b}
}

// allocate returns a fresh random channel ID. The caller holds d.mu.
func (d *Device) allocate() (uint32, bool) {
	if len(d.channels) >= d.maxChannels {
		d.evictChannel()
	}
	var b [4]byte
	for range 64 {
		if _, err := io.ReadFull(d.opts.Rand, b[:]); err != nil {
			return 0, false
		}
		cid := binary.BigEndian.Uint32(b[:])
		if cid == 0 || cid == BroadcastCID {
			continue
		}
		if _, used := d.channels[cid]; used {
			continue
		}
		d.clock++
		d.channels[cid] = d.clock
		return cid, true
	}
	return 0, false
}

// evictChannel forgets the least recently used channel that has no state.
func (d *Device) evictChannel() {
	var victim uint32
	oldest := ^uint64(0)
	for cid, used := range d.channels {
		if used >= oldest || cid == d.lockCID ||
			(d.asm != nil && d.asm.cid == cid) || (d.txn != nil && d.txn.cid == cid) {
			continue
		}
		victim, oldest = cid, used
	}
	if victim != 0 {
		delete(d.channels, victim)
	}
}

// lockedByOther reports whether a channel other than cid holds an unexpired
// CTAPHID_LOCK. The caller holds d.mu.
func (d *Device) lockedByOther(cid uint32) bool {
	if d.lockCID == 0 {
		return false
	}
	if !d.now().Before(d.lockEnd) {
		d.lockCID, d.lockPort = 0, nil
		return false
	}
	return d.lockCID != cid
}

// armTimer schedules the transaction timeout check of a. The caller holds
// d.mu. Rather than resetting one timer per packet, the callback compares
// against a.deadline and re-arms itself, which keeps the WaitGroup
// accounting simple.
func (d *Device) armTimer(a *assembly, after time.Duration) {
	d.wg.Add(1)
	a.timer = time.AfterFunc(after, func() {
		defer d.wg.Done()
		d.assemblyTimeout(a)
	})
}

// dropAssembly forgets the request being assembled. The caller holds d.mu.
func (d *Device) dropAssembly() {
	if d.asm.timer.Stop() {
		d.wg.Done()
	}
	d.asm = nil
}

func (d *Device) assemblyTimeout(a *assembly) {
	p := a.port
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	d.mu.Lock()
	if d.asm != a {
		d.mu.Unlock()
		return
	}
	if left := a.deadline.Sub(d.now()); left > 0 {
		d.armTimer(a, left)
		d.mu.Unlock()
		return
	}
	d.asm = nil
	d.mu.Unlock()
	if !p.closed {
		p.write(*errorMessage(a.cid, ErrMsgTimeout))
	}
}

// startTransaction prepares the Handler call for a request; Receive runs
// it in its own goroutine, so that CANCEL, INIT and other hosts are still
// served while it runs. The caller holds p.sendMu and d.mu.
func (d *Device) startTransaction(p *Port, cid uint32, cmd byte, req []byte) {
	ctx, cancel := context.WithCancel(d.ctx)
	t := &transaction{
		port:    p,
		cid:     cid,
		cmd:     cmd,
		cancel:  cancel,
		aborted: make(chan struct{}),
		status:  StatusProcessing,
	}
	d.txn = t
	t.keepalive = time.AfterFunc(d.opts.KeepaliveInterval, func() { d.tick(t) })
	d.wg.Add(1)
	p.pending = func() { d.callHandler(ctx, t, req) }
}

// abortTransaction releases the device from the current transaction without
// an answer. The caller holds d.mu.
func (d *Device) abortTransaction() {
	t := d.txn
	d.txn = nil
	close(t.aborted)
	t.keepalive.Stop()
	t.cancel()
}

func (d *Device) callHandler(ctx context.Context, t *transaction, req []byte) {
	defer d.wg.Done()
	res, ok := d.runHandler(ctx, t, req)
	if ok {
		// The answer goes out from this goroutine: handing it to another
		// would cost a thread wake-up per request.
		d.finish(t, res)
	}
}

// runHandler calls the Handler, one call at a time; ok is false when the
// transaction was abandoned before its turn came.
func (d *Device) runHandler(ctx context.Context, t *transaction, req []byte) (res []byte, ok bool) {
	d.handlerMu.Lock()
	defer d.handlerMu.Unlock()
	select {
	case <-t.aborted:
		// Abandoned while an earlier, aborted call was still running:
		// nobody waits for this answer any more.
		return nil, false
	default:
	}
	if t.cmd == CmdMsg {
		return d.msg.MSG(ctx, req), true
	}
	return d.h.CBOR(ctx, req, func(status byte) { d.setStatus(t, status) }), true
}

func (d *Device) setStatus(t *transaction, status byte) {
	d.mu.Lock()
	changed := d.txn == t && t.status != status
	t.status = status
	d.mu.Unlock()
	if changed {
		// §11.2.9.1.7: a keep-alive is also due whenever the status changes.
		d.sendKeepalive(t)
	}
}

// tick sends the periodic keep-alive of t and re-arms its timer while t
// is still the device's transaction.
func (d *Device) tick(t *transaction) {
	d.sendKeepalive(t)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.txn == t {
		t.keepalive.Reset(d.opts.KeepaliveInterval)
	}
}

func (d *Device) sendKeepalive(t *transaction) {
	p := t.port
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	d.mu.Lock()
	current, status := d.txn == t, t.status
	d.mu.Unlock()
	if current && !p.closed {
		p.write(message{cid: t.cid, cmd: CmdKeepalive, data: []byte{status}})
	}
}

func (d *Device) finish(t *transaction, res []byte) {
	p := t.port
	// Holding sendMu across the state change means a packet processed after
	// the device became idle is answered after this response, never before.
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	d.mu.Lock()
	current := d.txn == t
	if current {
		d.txn = nil
		t.keepalive.Stop()
		t.cancel()
	}
	d.mu.Unlock()
	if !current || p.closed {
		return
	}
	m := message{cid: t.cid, cmd: t.cmd, data: res}
	if len(res) == 0 || len(res) > maxPayload {
		// Not representable as a CTAP response (no status byte, or more
		// than 128 continuation packets).
		m = *errorMessage(t.cid, ErrOther)
	}
	p.write(m)
}
