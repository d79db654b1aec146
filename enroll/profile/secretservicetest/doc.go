// Package secretservicetest runs a private Secret Service for tests on
// Linux: a dbus-daemon session bus and gnome-keyring-daemon on it, with
// their own HOME and XDG directories in a temporary directory, so that
// code storing secrets in the system keyring (enroll/profile's Keyring,
// through go-keyring) is tested against the real protocol and a real
// keyring, and never touches the keyring of the person running the tests.
//
// go-keyring keeps one D-Bus connection per process, made on first use
// from $DBUS_SESSION_BUS_ADDRESS, so the bus is a property of the whole
// test process: TestMain calls Run, tests that need the keyring call
// Shared, and a test that needs another bus (or none) runs in a process
// of its own with RunInChild.
//
// The package builds on Linux only; elsewhere it is empty.
package secretservicetest
