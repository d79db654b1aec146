package ui

import (
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/enroll/profile"
)

// profilesCard is Settings' list of services (profiles): the one in use,
// adding one, choosing another, removing one. Profiles are the same as the
// keydesk profiles command's (profiles.json); the window changes service
// when it is next opened, since sessions and keys in flight belong to the
// service in use.
type profilesCard struct {
	s    *Shell
	set  *profile.Set
	card *widget.Card

	rows    *fyne.Container
	name    *widget.Entry
	origin  *widget.Entry
	rpID    *widget.Entry
	apiURL  *widget.Entry
	add     *widget.Button
	demo    *widget.Button
	problem *widget.Label
	note    *widget.Label
}

func newProfilesCard(s *Shell, set *profile.Set) *profilesCard {
	p := &profilesCard{s: s, set: set}
	p.rows = container.NewVBox()
	p.name = widget.NewEntry()
	p.name.SetPlaceHolder("work")
	p.origin = widget.NewEntry()
	p.origin.SetPlaceHolder("https://login.example.com")
	p.rpID = widget.NewEntry()
	p.rpID.SetPlaceHolder("optional: example.com (default: the origin's host)")
	p.apiURL = widget.NewEntry()
	p.apiURL.SetPlaceHolder("optional: https://api.example.com/keydesk (default: the origin)")
	p.problem = wrapped("")
	p.problem.Importance = widget.DangerImportance
	p.problem.Hide()
	p.note = wrapped("")
	p.note.Hide()
	p.add = widget.NewButtonWithIcon("Add the service", theme.ContentAddIcon(), p.addProfile)
	p.apiURL.OnSubmitted = func(string) { p.addProfile() }
	p.demo = widget.NewButton("Use Keydesk's local demo service", func() { p.use("") })
	form := widget.NewForm(
		widget.NewFormItem("Name", p.name),
		widget.NewFormItem("Origin", p.origin),
		widget.NewFormItem("RP ID", p.rpID),
		widget.NewFormItem("API address", p.apiURL),
	)
	p.card = widget.NewCard("Services", "The organizations whose accounts your keys protect (profiles).",
		container.NewVBox(p.rows, p.note, widget.NewSeparator(),
			widget.NewLabelWithStyle("Add a service", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
			form, p.problem, container.NewHBox(p.add)))
	p.refresh()
	return p
}

// refresh lists the profiles (UI goroutine).
func (p *profilesCard) refresh() {
	p.rows.RemoveAll()
	cur, hasCurrent := p.set.Current()
	for _, pr := range p.set.List() {
		text := fmt.Sprintf("%s — %s (RP ID %s)", pr.Name, pr.Origin, pr.RPID)
		label := wrapped(text)
		row := container.NewBorder(nil, nil, nil, nil, label)
		if hasCurrent && strings.EqualFold(cur.Name, pr.Name) {
			label.TextStyle = fyne.TextStyle{Bold: true}
			label.SetText(text + " · in use")
		} else {
			name := pr.Name
			use := widget.NewButton("Use", func() { p.use(name) })
			remove := widget.NewButtonWithIcon("", theme.DeleteIcon(), func() { p.remove(name) })
			row = container.NewBorder(nil, nil, nil, container.NewHBox(use, remove), label)
		}
		p.rows.Add(row)
	}
	if !hasCurrent {
		p.rows.Add(widget.NewLabelWithStyle("Keydesk's local demo service · in use", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
		p.demo.Hide()
	} else {
		p.rows.Add(container.NewHBox(p.demo))
		p.demo.Show()
	}
	p.rows.Refresh()
}

// addProfile validates and saves the form's profile.
func (p *profilesCard) addProfile() {
	pr := profile.Profile{
		Name: strings.TrimSpace(p.name.Text), Origin: strings.TrimSpace(p.origin.Text),
		RPID: strings.TrimSpace(p.rpID.Text), APIURL: strings.TrimSpace(p.apiURL.Text),
	}
	if err := p.set.Add(pr); err != nil {
		p.showProblem(profileErrorText(err))
		return
	}
	if err := p.set.Save(); err != nil {
		p.set.Remove(pr.Name)
		p.showProblem("The profile could not be saved: " + err.Error())
		return
	}
	p.problem.Hide()
	for _, e := range []*widget.Entry{p.name, p.origin, p.rpID, p.apiURL} {
		e.SetText("")
	}
	p.changed()
}

// use makes name the profile in use ("" for the local demo service).
func (p *profilesCard) use(name string) {
	if err := p.set.SetCurrent(name); err != nil {
		p.showProblem(profileErrorText(err))
		return
	}
	if err := p.set.Save(); err != nil {
		p.showProblem("The choice could not be saved: " + err.Error())
		return
	}
	p.changed()
}

// remove deletes a profile that is not in use.
func (p *profilesCard) remove(name string) {
	if err := p.set.Remove(name); err != nil {
		p.showProblem(profileErrorText(err))
		return
	}
	if err := p.set.Save(); err != nil {
		p.showProblem("The change could not be saved: " + err.Error())
		return
	}
	p.changed()
}

// changed redraws and says when the change applies.
func (p *profilesCard) changed() {
	p.problem.Hide()
	p.note.SetText("Saved. Keydesk uses the service in use from the next time it opens.")
	p.note.Show()
	p.refresh()
}

func (p *profilesCard) showProblem(msg string) {
	p.problem.SetText(msg)
	p.problem.Show()
}

// profileErrorText is a refused profile in plain words.
func profileErrorText(err error) string {
	if e, ok := errors.AsType[*profile.Error](err); ok && e.Detail != "" {
		return e.Detail
	}
	return err.Error()
}
