package runway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// wire bodies: field names and JSON types as the API documents them.
type generateBody struct {
	Prompt      string            `json:"prompt"`
	ImageURL    string            `json:"imageUrl,omitempty"`
	Duration    int               `json:"duration"`
	Quality     Quality           `json:"quality"`
	AspectRatio AspectRatio       `json:"aspectRatio,omitempty"`
	WaterMark   string            `json:"waterMark"`
	CallBackURL string            `json:"callBackUrl,omitempty"`
	Extra       map[string]any    `json:"-"`
	Meta        map[string]string `json:"-"` // never sent
}

type extendBody struct {
	TaskID      string            `json:"taskId"`
	Prompt      string            `json:"prompt"`
	Quality     Quality           `json:"quality"`
	WaterMark   string            `json:"waterMark"`
	CallBackURL string            `json:"callBackUrl,omitempty"`
	Extra       map[string]any    `json:"-"`
	Meta        map[string]string `json:"-"` // never sent
}

type alephBody struct {
	Prompt         string            `json:"prompt"`
	VideoURL       string            `json:"videoUrl"`
	AspectRatio    AspectRatio       `json:"aspectRatio,omitempty"`
	Seed           *int              `json:"seed,omitempty"`
	ReferenceImage string            `json:"referenceImage,omitempty"`
	WaterMark      string            `json:"waterMark"`
	CallBackURL    string            `json:"callBackUrl,omitempty"`
	UploadCN       bool              `json:"uploadCn"`
	Extra          map[string]any    `json:"-"`
	Meta           map[string]string `json:"-"` // never sent
}

// MarshalJSON encodes the modeled fields, then Extra's.
func (b generateBody) MarshalJSON() ([]byte, error) {
	type plain generateBody
	return withExtra(plain(b), b.Extra)
}

// MarshalJSON encodes the modeled fields, then Extra's.
func (b extendBody) MarshalJSON() ([]byte, error) {
	type plain extendBody
	return withExtra(plain(b), b.Extra)
}

// MarshalJSON encodes the modeled fields, then Extra's.
func (b alephBody) MarshalJSON() ([]byte, error) {
	type plain alephBody
	return withExtra(plain(b), b.Extra)
}

// withExtra encodes the wire body v (a JSON object) and appends extra's fields in key order,
// so the same request always gives the same bytes.
func withExtra(v any, extra map[string]any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	b = b[:len(b)-1] // the closing brace
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(extra[k])
		if err != nil {
			return nil, err
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, kb...)
		b = append(b, ':')
		b = append(b, vb...)
	}
	return append(b, '}'), nil
}

// jsonNames returns the lower-cased JSON names of a wire body's fields.
func jsonNames(v any) map[string]bool {
	names := make(map[string]bool)
	t := reflect.TypeOf(v)
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[strings.ToLower(name)] = true
		}
	}
	return names
}

// Modeled field names per submission, from the wire bodies' tags so they never drift.
var (
	generateFields = jsonNames(generateBody{})
	extendFields   = jsonNames(extendBody{})
	alephFields    = jsonNames(alephBody{})
)

// flexInt decodes a JSON number, a numeric string, an empty string or null into an int.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*f = 0
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*f = 0
			return nil
		}
		b = []byte(s)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		fl, ferr := strconv.ParseFloat(string(b), 64)
		if ferr != nil || fl != float64(int64(fl)) || fl > math.MaxInt32 || fl < math.MinInt32 {
			return fmt.Errorf("runway: %q is not an integer code", string(b))
		}
		n = int64(fl)
	}
	if n > math.MaxInt32 || n < math.MinInt32 {
		return fmt.Errorf("runway: code %d out of range", n)
	}
	*f = flexInt(n)
	return nil
}

// flexTime decodes a time in any form Kie has been seen to use: "YYYY-MM-DD HH:mm:ss" (UTC
// assumed, the docs name no zone), RFC 3339, epoch milliseconds or seconds as a number or a
// numeric string. Anything else (null, "", a bool, an unknown layout) is the zero time: a
// timestamp is not worth failing a paid task over, and Raw keeps it.
type flexTime time.Time

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00"}

// epochMillisFrom is where epoch values are read as milliseconds: 1e11 seconds is the year
// 5138, 1e11 milliseconds is March 1973, so no plausible time is ambiguous.
const epochMillisFrom = 1e11

func (f *flexTime) UnmarshalJSON(b []byte) error {
	*f = flexTime{}
	b = bytes.TrimSpace(b)
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return nil
		}
	}
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n <= 0 || n >= 1e15 || math.IsNaN(n) {
			return nil
		}
		if n >= epochMillisFrom {
			*f = flexTime(time.UnixMilli(int64(n)).UTC())
		} else {
			*f = flexTime(time.Unix(int64(n), 0).UTC())
		}
		return nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			*f = flexTime(t.UTC())
			return nil
		}
	}
	return nil
}

// flexCode decodes a failure code leniently: a JSON integer or a numeric string gives the
// number; anything else (text such as "E_MODERATION", a bool, an object) gives 0 and keeps the
// text. It never fails, so an odd code cannot make a finished task undecodable.
type flexCode struct {
	n    int
	text string // the value as sent when it was not a JSON number; see Task.FailCodeText
}

func (f *flexCode) UnmarshalJSON(b []byte) error {
	*f = flexCode{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return nil
		}
		f.text = s
	} else if b[0] == '{' || b[0] == '[' || b[0] == 't' || b[0] == 'f' {
		f.text = s
		return nil
	}
	var n flexInt
	if n.UnmarshalJSON([]byte(strings.TrimSpace(s))) == nil {
		f.n = int(n)
	} else if f.text == "" {
		f.text = s // a number that is not an integer, such as 4.5 or 1e99
	}
	return nil
}

// flexFlag decodes a 0/1 flag sent as a number, a numeric string or a bool; anything else is
// false.
type flexFlag bool

func (f *flexFlag) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, `"`) {
		if json.Unmarshal(b, &s) != nil {
			s = ""
		}
		s = strings.TrimSpace(s)
	}
	switch strings.ToLower(s) {
	case "1", "true", "1.0":
		*f = true
	default:
		*f = false
	}
	return nil
}

// wireTask is record-detail's `data`.
type wireTask struct {
	TaskID       string   `json:"taskId"`
	ParentTaskID string   `json:"parentTaskId"`
	State        string   `json:"state"`
	GenerateTime flexTime `json:"generateTime"`
	VideoInfo    *struct {
		VideoID  string `json:"videoId"`
		TaskID   string `json:"taskId"`
		VideoURL string `json:"videoUrl"`
		ImageURL string `json:"imageUrl"`
	} `json:"videoInfo"`
	FailCode   flexCode `json:"failCode"`
	FailMsg    string   `json:"failMsg"`
	ExpireFlag flexFlag `json:"expireFlag"`
}

func decodeTask(data json.RawMessage) (*Task, error) {
	var w wireTask
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	t := &Task{
		ID:           w.TaskID,
		ParentID:     w.ParentTaskID,
		State:        State(w.State),
		FailCode:     w.FailCode.n,
		FailCodeText: w.FailCode.text,
		FailMessage:  w.FailMsg,
		Expired:      bool(w.ExpireFlag),
		GeneratedAt:  time.Time(w.GenerateTime),
		Raw:          data,
	}
	if w.VideoInfo != nil {
		t.VideoID = w.VideoInfo.VideoID
		t.VideoURL = w.VideoInfo.VideoURL
		t.ImageURL = w.VideoInfo.ImageURL
	}
	return t, nil
}

// wireAlephTask is Aleph record-info's `data`.
type wireAlephTask struct {
	TaskID   string `json:"taskId"`
	Response *struct {
		TaskID         string `json:"taskId"`
		ResultVideoURL string `json:"resultVideoUrl"`
		ResultImageURL string `json:"resultImageUrl"`
	} `json:"response"`
	CompleteTime flexTime `json:"completeTime"`
	SuccessFlag  flexInt  `json:"successFlag"`
	ErrorCode    flexCode `json:"errorCode"`
	ErrorMessage string   `json:"errorMessage"`
	ExpireFlag   flexFlag `json:"expireFlag"`
}

// decodeAlephTask maps successFlag/errorMessage to a State: 1 = success; 0 with an error
// message = fail; 0 without one = generating (Aleph does not tell queueing from generating).
func decodeAlephTask(data json.RawMessage) (*Task, error) {
	var w wireAlephTask
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	t := &Task{
		ID:           w.TaskID,
		FailCode:     w.ErrorCode.n,
		FailCodeText: w.ErrorCode.text,
		FailMessage:  w.ErrorMessage,
		Expired:      bool(w.ExpireFlag),
		GeneratedAt:  time.Time(w.CompleteTime),
		Aleph:        true,
		Raw:          data,
	}
	if w.Response != nil {
		t.VideoURL = w.Response.ResultVideoURL
		t.ImageURL = w.Response.ResultImageURL
	}
	switch {
	case w.SuccessFlag == 1:
		t.State = StateSuccess
	case w.SuccessFlag == 0 && strings.TrimSpace(w.ErrorMessage) != "":
		t.State = StateFail
	case w.SuccessFlag == 0 && (w.ErrorCode.n != 0 || strings.TrimSpace(w.ErrorCode.text) != ""):
		t.State = StateFail
	case w.SuccessFlag == 0:
		t.State = StateGenerating
	default:
		// Veo/Luma use flags 2+ for failure states; Aleph documents only 0/1, so anything
		// else is surfaced as an unknown state rather than guessed.
		t.State = State(fmt.Sprintf("successFlag:%d", int(w.SuccessFlag)))
	}
	return t, nil
}
