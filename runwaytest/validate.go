package runwaytest

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The fake's request validation mirrors the limits Kie documents for the generate, extend
// and Aleph requests: each check that fails is answered with body code 422 and a message naming the field.

const maxPromptRunes = 1800

var (
	runwayAspects = []string{"16:9", "4:3", "1:1", "3:4", "9:16"}
	alephAspects  = []string{"16:9", "9:16", "4:3", "3:4", "1:1", "21:9"}
)

func checkURL(field, raw string, required bool) string {
	if raw == "" {
		if required {
			return field + " is required"
		}
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return field + " must be an http(s) URL"
	}
	return ""
}

func checkPrompt(p string, maxRunes int) string {
	if strings.TrimSpace(p) == "" {
		return "prompt is required"
	}
	if maxRunes > 0 && utf8.RuneCountInString(p) > maxRunes {
		return "prompt exceeds " + strconv.Itoa(maxRunes) + " characters"
	}
	return ""
}

func checkQuality(q string) string {
	if q != "720p" && q != "1080p" {
		return "quality must be 720p or 1080p"
	}
	return ""
}

// duration accepts a JSON number or a numeric string (the docs' examples send "5").
func duration(raw json.RawMessage) (int, bool) {
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	d, err := strconv.Atoi(n.String())
	return d, err == nil
}

func first(msgs ...string) string {
	for _, m := range msgs {
		if m != "" {
			return m
		}
	}
	return ""
}

func (r *generateRequest) validate() string {
	if m := checkPrompt(r.Prompt, maxPromptRunes); m != "" {
		return m
	}
	d, ok := duration(r.Duration)
	if !ok || (d != 5 && d != 10) {
		return "duration must be 5 or 10"
	}
	if m := checkQuality(r.Quality); m != "" {
		return m
	}
	if d == 10 && r.Quality == "1080p" {
		return "1080p is only available for 5-second videos"
	}
	switch {
	case r.AspectRatio == "" && r.ImageURL == "":
		return "aspectRatio is required for text-to-video"
	case r.AspectRatio != "" && !slices.Contains(runwayAspects, r.AspectRatio):
		return "aspectRatio must be one of 16:9, 4:3, 1:1, 3:4, 9:16"
	}
	return first(checkURL("imageUrl", r.ImageURL, false), checkURL("callBackUrl", r.CallBackURL, false))
}

func (r *extendRequest) validate() string {
	if r.TaskID == "" {
		return "taskId is required"
	}
	return first(checkPrompt(r.Prompt, 0), checkQuality(r.Quality), checkURL("callBackUrl", r.CallBackURL, false))
}

func (r *alephRequest) validate() string {
	if r.AspectRatio != "" && !slices.Contains(alephAspects, r.AspectRatio) {
		return "aspectRatio must be one of 16:9, 9:16, 4:3, 3:4, 1:1, 21:9"
	}
	return first(checkPrompt(r.Prompt, 0), checkURL("videoUrl", r.VideoURL, true),
		checkURL("referenceImage", r.ReferenceImage, false), checkURL("callBackUrl", r.CallBackURL, false))
}
