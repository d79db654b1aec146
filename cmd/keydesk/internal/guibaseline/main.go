// Command guibaseline is the yardstick of the window's memory: a
// minimal Fyne window as large as Keydesk's (tabs, a heading, a row with
// an icon, two lines and a button), measured like keydesk gui-tour
// --measure (make bench-gui runs both in the same Xvfb). What the
// toolkit and the OpenGL under it cost any Fyne program, Keydesk's
// figure cannot go below; the difference is Keydesk's own.
package main

import (
	"fmt"
	"os"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/cmd/keydesk/internal/memstat"
)

func main() {
	a := app.NewWithID("io.keydesk.guibaseline")
	w := a.NewWindow("Baseline")
	row := container.NewBorder(nil, widget.NewSeparator(), widget.NewIcon(theme.ComputerIcon()),
		widget.NewButtonWithIcon("Open", theme.NavigateNextIcon(), nil),
		container.NewVBox(widget.NewLabelWithStyle("A key", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), widget.NewLabel("USB · no PIN yet")))
	page := container.NewVBox(widget.NewLabelWithStyle("Your security keys", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), row)
	tabs := container.NewAppTabs(container.NewTabItem("Keys", page), container.NewTabItem("Account", widget.NewLabel("")),
		container.NewTabItem("Recovery", widget.NewLabel("")), container.NewTabItem("Settings", widget.NewLabel("")))
	w.SetContent(tabs)
	w.Resize(fyne.NewSize(720, 520))
	go func() {
		// A capture waits for a frame: the first one drawn.
		fyne.DoAndWait(func() { w.Canvas().Capture() })
		time.Sleep(2 * time.Second)
		idle, heap := memstat.SettledRSS(), memstat.GoHeap()
		fmt.Printf("resident memory when idle: %.1f MB (Go heap %.1f MB)\n", idle, heap)
		fmt.Print(memstat.Breakdown())
		fyne.Do(a.Quit)
	}()
	w.ShowAndRun()
	os.Exit(0)
}
