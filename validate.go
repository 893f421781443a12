package runway

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits enforced before a request is sent.
const (
	MaxPromptRunes = 1800
	maxTaskIDLen   = 128
)

// validExtra refuses extra fields that would override a modeled one, have an empty name or
// cannot be encoded.
func validExtra(extra map[string]any, modeled map[string]bool) error {
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		switch {
		case strings.TrimSpace(k) == "":
			return invalid("Extra", "empty field name")
		case modeled[strings.ToLower(k)]:
			return invalid("Extra", "%q is a field the SDK sets; use the request's own field", k)
		}
		if _, err := json.Marshal(extra[k]); err != nil {
			return invalid("Extra", "field %q cannot be encoded as JSON: %v", k, err)
		}
	}
	return nil
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func validPrompt(p string, max int) error {
	if strings.TrimSpace(p) == "" {
		return invalid("Prompt", "required")
	}
	if !utf8.ValidString(p) {
		return invalid("Prompt", "not valid UTF-8")
	}
	if max > 0 {
		if n := utf8.RuneCountInString(p); n > max {
			return invalid("Prompt", "%d characters, at most %d allowed", n, max)
		}
	}
	return nil
}

func validQuality(q Quality) error {
	switch q {
	case Quality720p, Quality1080p:
		return nil
	case "":
		return invalid("Quality", "required (720p or 1080p)")
	}
	return invalid("Quality", "%q is not 720p or 1080p", string(q))
}

func validAspect(a AspectRatio, aleph bool) error {
	switch a {
	case AspectRatio16x9, AspectRatio4x3, AspectRatio1x1, AspectRatio3x4, AspectRatio9x16:
		return nil
	case AspectRatio21x9:
		if aleph {
			return nil
		}
		return invalid("AspectRatio", "21:9 is only available for Aleph")
	}
	return invalid("AspectRatio", "%q is not one of 16:9, 4:3, 1:1, 3:4, 9:16", string(a))
}

// validURL checks an absolute http(s) URL; the URL itself is not echoed (it may be signed).
func validURL(field, raw string, required bool) error {
	if raw == "" {
		if required {
			return invalid(field, "required")
		}
		return nil
	}
	if _, err := parseHTTPURL(raw); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

// validTaskID bounds a task id and keeps it printable, so it is safe as a query parameter,
// a dedupe key and a log field.
func validTaskID(field, id string) error {
	if id == "" {
		return invalid(field, "required")
	}
	if len(id) > maxTaskIDLen {
		return invalid(field, "longer than %d bytes", maxTaskIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c >= utf8.RuneSelf {
			return validTaskIDRunes(field, id[i:]) // not ASCII: check rune by rune from here
		} else if c <= ' ' || c == 0x7f {
			return invalid(field, "contains a non-printable character") // control or space
		}
	}
	return nil
}

// validTaskIDRunes is validTaskID's check of the characters, for ids that are not all ASCII.
func validTaskIDRunes(field, id string) error {
	for _, r := range id {
		if r == utf8.RuneError || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return invalid(field, "contains a non-printable character")
		}
	}
	return nil
}

func (r *GenerateRequest) validate() error {
	if err := validPrompt(r.Prompt, MaxPromptRunes); err != nil {
		return err
	}
	if r.Duration != 5 && r.Duration != 10 {
		return invalid("Duration", "%d is not 5 or 10", r.Duration)
	}
	if err := validQuality(r.Quality); err != nil {
		return err
	}
	if r.Duration == 10 && r.Quality == Quality1080p {
		return invalid("Quality", "1080p is only available with Duration 5")
	}
	if err := validURL("ImageURL", r.ImageURL, false); err != nil {
		return err
	}
	if r.AspectRatio == "" {
		if r.ImageURL == "" {
			return invalid("AspectRatio", "required when ImageURL is empty")
		}
	} else if err := validAspect(r.AspectRatio, false); err != nil {
		return err
	}
	if err := validURL("CallBackURL", r.CallBackURL, false); err != nil {
		return err
	}
	return validExtra(r.Extra, generateFields)
}

func (r *ExtendRequest) validate() error {
	if err := validTaskID("TaskID", r.TaskID); err != nil {
		return err
	}
	if err := validPrompt(r.Prompt, 0); err != nil {
		return err
	}
	if err := validQuality(r.Quality); err != nil {
		return err
	}
	if err := validURL("CallBackURL", r.CallBackURL, false); err != nil {
		return err
	}
	return validExtra(r.Extra, extendFields)
}

func (r *AlephRequest) validate() error {
	if err := validPrompt(r.Prompt, 0); err != nil {
		return err
	}
	if err := validURL("VideoURL", r.VideoURL, true); err != nil {
		return err
	}
	if r.AspectRatio != "" {
		if err := validAspect(r.AspectRatio, true); err != nil {
			return err
		}
	}
	if err := validURL("ReferenceImage", r.ReferenceImage, false); err != nil {
		return err
	}
	if err := validURL("CallBackURL", r.CallBackURL, false); err != nil {
		return err
	}
	return validExtra(r.Extra, alephFields)
}
