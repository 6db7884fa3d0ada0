package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"strings"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// plot is one panel drawn as Grafana draws a time series: a title, a
// value axis in the panel's unit, a time axis, one line per series with a
// light fill under it, and a legend with each series' last value.
type plot struct {
	title string
	unit  string // Grafana's unit id: ops, percentunit, s, bytes, short
	lines []line
}

type line struct {
	name   string
	times  []time.Time
	values []float64 // NaN: no value at that time
}

// Grafana's dark theme and its classic series palette.
var (
	background = color.RGBA{0x18, 0x1b, 0x1f, 0xff}
	gridColor  = color.RGBA{0x2c, 0x32, 0x35, 0xff}
	textColor  = color.RGBA{0xcc, 0xcc, 0xdc, 0xff}
	dimColor   = color.RGBA{0x8e, 0x8e, 0x9e, 0xff}
	palette    = []color.RGBA{
		{0x7e, 0xb2, 0x6d, 0xff}, {0xea, 0xb8, 0x39, 0xff}, {0x6e, 0xd0, 0xe0, 0xff}, {0xef, 0x84, 0x3c, 0xff},
		{0xe2, 0x4d, 0x42, 0xff}, {0x1f, 0x78, 0xc1, 0xff}, {0xba, 0x43, 0xa9, 0xff}, {0x70, 0x5d, 0xa0, 0xff},
		{0x50, 0x86, 0x42, 0xff}, {0xcc, 0xa3, 0x00, 0xff},
	}
)

// faces are the fonts of the plots: Go's own, embedded in x/image.
type faces struct{ title, text font.Face }

func newFaces() (faces, error) {
	face := func(ttf []byte, size float64) (font.Face, error) {
		f, err := opentype.Parse(ttf)
		if err != nil {
			return nil, err
		}
		return opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	}
	title, err := face(gobold.TTF, 17)
	if err != nil {
		return faces{}, fmt.Errorf("the title font: %w", err)
	}
	text, err := face(goregular.TTF, 13)
	if err != nil {
		return faces{}, fmt.Errorf("the text font: %w", err)
	}
	return faces{title: title, text: text}, nil
}

const (
	width        = 960
	plotHeight   = 280
	marginLeft   = 84
	marginRight  = 24
	marginTop    = 44
	axisHeight   = 26
	legendLine   = 19
	legendMargin = 10
)

// render draws p.
func (p plot) render(f faces) *image.RGBA {
	height := marginTop + plotHeight + axisHeight + legendMargin + legendLine*len(p.lines) + legendMargin
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(background), image.Point{}, draw.Src)
	text(img, f.title, textColor, 16, 28, p.title)

	area := image.Rect(marginLeft, marginTop, width-marginRight, marginTop+plotHeight)
	start, end := p.timeRange()
	top := niceCeil(p.highest())
	step := top / 4
	x := func(t time.Time) float32 {
		return float32(area.Min.X) + float32(area.Dx())*float32(t.Sub(start).Seconds()/end.Sub(start).Seconds())
	}
	y := func(v float64) float32 {
		return float32(area.Max.Y) - float32(area.Dy())*float32(v/top)
	}

	// Value axis: a grid line and a label every quarter.
	for i := 0; i <= 4; i++ {
		v := float64(i) * step
		yy := int(y(v))
		hline(img, area.Min.X, area.Max.X, yy, gridColor)
		label := format(p.unit, v, step)
		text(img, f.text, dimColor, area.Min.X-8-measure(f.text, label), yy+5, label)
	}
	// Time axis: a label at round times, about every sixth of the range.
	tick := roundTick(end.Sub(start) / 6)
	for t := start.Truncate(tick).Add(tick); t.Before(end); t = t.Add(tick) {
		xx := int(x(t))
		vline(img, xx, area.Min.Y, area.Max.Y, gridColor)
		label := t.Format("15:04:05")
		text(img, f.text, dimColor, xx-measure(f.text, label)/2, area.Max.Y+18, label)
	}

	for i, l := range p.lines {
		c := palette[i%len(palette)]
		fill := color.RGBA{c.R / 10, c.G / 10, c.B / 10, 0x1a} // 10%, premultiplied
		var stroke, under vector.Rasterizer
		stroke.Reset(width, height)
		under.Reset(width, height)
		for _, run := range l.runs() {
			for j := 1; j < len(run); j++ {
				segment(&stroke, x(l.times[run[j-1]]), y(l.values[run[j-1]]), x(l.times[run[j]]), y(l.values[run[j]]), 1.1)
			}
			if len(run) > 1 {
				under.MoveTo(x(l.times[run[0]]), y(0))
				for _, j := range run {
					under.LineTo(x(l.times[j]), y(l.values[j]))
				}
				under.LineTo(x(l.times[run[len(run)-1]]), y(0))
				under.ClosePath()
			}
		}
		under.Draw(img, img.Bounds(), image.NewUniform(fill), image.Point{})
		stroke.Draw(img, img.Bounds(), image.NewUniform(c), image.Point{})

		// Legend: a swatch, the name, the last value.
		ly := area.Max.Y + axisHeight + legendMargin + legendLine*i + 13
		draw.Draw(img, image.Rect(area.Min.X, ly-6, area.Min.X+16, ly-3), image.NewUniform(c), image.Point{}, draw.Src)
		text(img, f.text, textColor, area.Min.X+24, ly, l.name)
		last := "-"
		if v, ok := l.last(); ok {
			last = format(p.unit, v, step/10) // a digit more than the axis
		}
		text(img, f.text, dimColor, area.Max.X-measure(f.text, "last "+last), ly, "last "+last)
	}
	return img
}

// runs returns the indexes of the line's values, split where a value is
// missing: Grafana leaves a gap there.
func (l line) runs() [][]int {
	var runs [][]int
	var cur []int
	for i, v := range l.values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if len(cur) > 0 {
				runs = append(runs, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, i)
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	return runs
}

func (l line) last() (float64, bool) {
	for i := len(l.values) - 1; i >= 0; i-- {
		if !math.IsNaN(l.values[i]) && !math.IsInf(l.values[i], 0) {
			return l.values[i], true
		}
	}
	return 0, false
}

func (p plot) timeRange() (start, end time.Time) {
	for _, l := range p.lines {
		for _, t := range l.times {
			if start.IsZero() || t.Before(start) {
				start = t
			}
			if t.After(end) {
				end = t
			}
		}
	}
	if !end.After(start) {
		end = start.Add(time.Second)
	}
	return start, end
}

func (p plot) highest() float64 {
	h := 0.0
	for _, l := range p.lines {
		for _, v := range l.values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) && v > h {
				h = v
			}
		}
	}
	return h
}

// niceCeil is the smallest of 1, 2, 4, 5 or 8 times a power of ten (4
// steps of a quarter each read well) that is at least v.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 4, 5, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// roundTick is the first of a few round durations that is at least d.
func roundTick(d time.Duration) time.Duration {
	for _, t := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
		15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute} {
		if t >= d {
			return t
		}
	}
	return 15 * time.Minute
}

// format writes v in Grafana's unit, with as many decimals as the axis'
// step needs.
func format(unit string, v, step float64) string {
	switch unit {
	case "percentunit":
		return trim(fmt.Sprintf("%.*f", decimals(step*100), v*100)) + "%"
	case "s":
		for _, u := range []struct {
			scale float64
			name  string
		}{{1, "s"}, {1e-3, "ms"}, {1e-6, "µs"}, {1e-9, "ns"}} {
			if step >= u.scale || u.name == "ns" {
				return trim(fmt.Sprintf("%.*f", decimals(step/u.scale), v/u.scale)) + " " + u.name
			}
		}
	case "bytes":
		for _, u := range []struct {
			scale float64
			name  string
		}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}, {1, "B"}} {
			if step >= u.scale || u.name == "B" {
				return trim(fmt.Sprintf("%.*f", decimals(step/u.scale), v/u.scale)) + " " + u.name
			}
		}
	}
	s := si(v, step)
	if unit == "ops" {
		return s + "/s"
	}
	return s
}

// si writes v with a k or M suffix, the suffix chosen by the step.
func si(v, step float64) string {
	switch {
	case step >= 1e6:
		return trim(fmt.Sprintf("%.*f", decimals(step/1e6), v/1e6)) + "M"
	case step >= 1e3:
		return trim(fmt.Sprintf("%.*f", decimals(step/1e3), v/1e3)) + "k"
	}
	return trim(fmt.Sprintf("%.*f", decimals(step), v))
}

// decimals is how many a value needs when the axis moves by step.
func decimals(step float64) int {
	if step <= 0 || step >= 1 {
		return 0
	}
	return min(int(math.Ceil(-math.Log10(step))), 6)
}

// trim drops trailing zeros after a decimal point.
func trim(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// segment adds a line from (x0, y0) to (x1, y1), w wide on each side, to z.
func segment(z *vector.Rasterizer, x0, y0, x1, y1, w float32) {
	dx, dy := x1-x0, y1-y0
	n := float32(math.Hypot(float64(dx), float64(dy)))
	if n == 0 {
		return
	}
	nx, ny := -dy/n*w, dx/n*w
	z.MoveTo(x0+nx, y0+ny)
	z.LineTo(x1+nx, y1+ny)
	z.LineTo(x1-nx, y1-ny)
	z.LineTo(x0-nx, y0-ny)
	z.ClosePath()
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x < x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := y0; y < y1; y++ {
		img.SetRGBA(x, y, c)
	}
}

func text(img *image.RGBA, face font.Face, c color.RGBA, x, y int, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func measure(face font.Face, s string) int {
	return font.MeasureString(face, s).Round()
}
