package ui

import (
	"context"
	"encoding/hex"
	"errors"
	"image/color"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"github.com/keydesk/keydesk/enroll/models"
)

// modelIcons gives the screens key models' pictures, from the service
// (Deps.Models): each model is asked for once, in the background, and
// whoever drew a row before the answer came is asked to draw it again.
// Only the UI goroutine touches it.
type modelIcons struct {
	s *Shell
	// known holds the answers, by model.
	known map[[16]byte]modelAnswer
	// pending are the models asked for and not answered yet; redraw are
	// the rows to draw again once a model's answer comes.
	pending map[[16]byte]bool
	redraw  map[[16]byte][]func()
	// resources are the pictures made into Fyne resources, by model and
	// background, so that a redraw reuses the rasterized image.
	resources map[modelIconKey]fyne.Resource
}

// modelAnswer is a model's lookup as the screens keep it: the model, or
// nil for none (unknown, or the service did not answer, in which case
// it is asked again at the first draw after retryAt).
type modelAnswer struct {
	m       *models.Model
	retryAt time.Time
}

type modelIconKey struct {
	aaguid [16]byte
	dark   bool
}

func newModelIcons(s *Shell) *modelIcons {
	return &modelIcons{s: s, known: map[[16]byte]modelAnswer{}, pending: map[[16]byte]bool{}, redraw: map[[16]byte][]func(){},
		resources: map[modelIconKey]fyne.Resource{}}
}

// icon returns the picture of the model aaguid names for the current
// theme, or nil while it is not known or when there is none; in the
// first case redraw runs once it is.
func (mi *modelIcons) icon(aaguid [16]byte, redraw func()) fyne.Resource {
	if mi.s.deps.Models == nil || aaguid == ([16]byte{}) {
		return nil
	}
	a, asked := mi.known[aaguid]
	if asked && !a.retryAt.IsZero() && time.Now().After(a.retryAt) {
		delete(mi.known, aaguid)
		asked = false
	}
	if !asked {
		if redraw != nil {
			mi.redraw[aaguid] = append(mi.redraw[aaguid], redraw)
		}
		if !mi.pending[aaguid] {
			mi.pending[aaguid] = true
			mi.lookup(aaguid)
		}
		return nil
	}
	m := a.m
	if m == nil {
		return nil
	}
	dark := darkBackground()
	icon := m.IconFor(dark)
	if icon == nil {
		return nil
	}
	k := modelIconKey{aaguid, dark && m.IconDark != nil}
	if r, ok := mi.resources[k]; ok {
		return r
	}
	name := "model-" + hex.EncodeToString(aaguid[:])
	if k.dark {
		name += "-dark"
	}
	r := fyne.NewStaticResource(name+icon.Extension(), icon.Data)
	mi.resources[k] = r
	return r
}

// name is the service's name for the model aaguid names, "" while it is
// not known or when there is none.
func (mi *modelIcons) name(aaguid [16]byte) string {
	if m := mi.known[aaguid].m; m != nil {
		return m.Name
	}
	return ""
}

// lookup asks for a model in the background and redraws its rows.
func (mi *modelIcons) lookup(aaguid [16]byte) {
	s := mi.s
	s.goBackground(func(ctx context.Context) {
		m, err := s.deps.Models(ctx, aaguid)
		if ctx.Err() != nil {
			return
		}
		s.do(func() {
			switch {
			case err == nil:
				mi.known[aaguid] = modelAnswer{m: &m}
			case errors.Is(err, models.ErrUnknownModel):
				mi.known[aaguid] = modelAnswer{}
			default:
				mi.known[aaguid] = modelAnswer{retryAt: time.Now().Add(models.DefaultRetryAfter)}
			}
			rows := mi.redraw[aaguid]
			delete(mi.redraw, aaguid)
			delete(mi.pending, aaguid)
			for _, f := range rows {
				f()
			}
		})
	})
}

// darkBackground tells whether the theme in use draws on a dark
// background: the Settings tab can force a variant that the system's
// setting does not report.
func darkBackground() bool {
	return color.GrayModel.Convert(theme.Color(theme.ColorNameBackground)).(color.Gray).Y < 0x80
}
