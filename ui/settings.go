package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// themePreference is the preference key of the chosen theme variant.
const themePreference = "theme"

// The theme choices, as stored and shown.
const (
	themeSystem = "Same as the system"
	themeLight  = "Light"
	themeDark   = "Dark"
)

// settingsScreen is the Settings tab: the theme, the services (profiles)
// and what Keydesk is made of.
type settingsScreen struct {
	s        *Shell
	theme    *widget.RadioGroup
	profiles *profilesCard // nil without Deps.Profiles
	content  fyne.CanvasObject
}

func newSettingsScreen(s *Shell) *settingsScreen {
	st := &settingsScreen{s: s}
	st.theme = widget.NewRadioGroup([]string{themeSystem, themeLight, themeDark}, func(choice string) {
		if choice == "" {
			return
		}
		s.app.Preferences().SetString(themePreference, choice)
		applyTheme(s.app, choice)
	})
	st.theme.Horizontal = true
	choice := s.app.Preferences().StringWithFallback(themePreference, themeSystem)
	st.theme.SetSelected(choice)
	applyTheme(s.app, choice)

	about := widget.NewForm()
	for _, v := range s.deps.Versions {
		about.Append(v.Name, widget.NewLabel(v.Version))
	}
	cards := container.NewVBox(widget.NewCard("Appearance", "", st.theme))
	if s.deps.Profiles != nil {
		st.profiles = newProfilesCard(s, s.deps.Profiles)
		cards.Add(st.profiles.card)
	}
	cards.Add(widget.NewCard("About Keydesk", "Keydesk manages FIDO2 security keys and the accounts they protect.", about))
	st.content = container.NewVScroll(cards)
	return st
}

// applyTheme sets the app's theme for a stored choice.
func applyTheme(app fyne.App, choice string) {
	switch choice {
	case themeLight:
		app.Settings().SetTheme(variantTheme{theme.DefaultTheme(), theme.VariantLight})
	case themeDark:
		app.Settings().SetTheme(variantTheme{theme.DefaultTheme(), theme.VariantDark})
	default:
		app.Settings().SetTheme(theme.DefaultTheme())
	}
}

// variantTheme is a theme held to one variant, whatever the system's.
type variantTheme struct {
	fyne.Theme
	variant fyne.ThemeVariant
}

func (t variantTheme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	return t.Theme.Color(n, t.variant)
}
