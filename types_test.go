package runway

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFlexIntDecodesNumberStringNull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{`400`, 400, false},
		{`"400"`, 400, false},
		{`" 400 "`, 400, false},
		{`null`, 0, false},
		{`""`, 0, false},
		{`400.0`, 400, false},
		{`4e2`, 400, false},
		{`-1`, -1, false},
		{`400.5`, 0, true},
		{`"abc"`, 0, true},
		{`true`, 0, true},
		{`{}`, 0, true},
		{`2e308`, 0, true},
		{`99999999999`, 0, true},
		{`"99999999999"`, 0, true},
	}
	for _, tt := range tests {
		var got struct {
			FailCode flexInt `json:"failCode"`
		}
		err := json.Unmarshal([]byte(`{"failCode":`+tt.in+`}`), &got)
		if tt.wantErr {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, int(got.FailCode), tt.in)
	}
}

func TestFlexTimeDecodesBothFormats(t *testing.T) {
	t.Parallel()
	want := time.Date(2023, 8, 15, 14, 30, 45, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{`"2023-08-15 14:30:45"`, want},
		{`"2023-08-15T14:30:45Z"`, want},
		{`"2023-08-15T16:30:45+02:00"`, want},
		{`"2023-08-15T14:30:45.000Z"`, want},
		{`"2023-08-15T14:30:45"`, want},
		{`" 2023-08-15 14:30:45 "`, want},
		{`1692109845`, want},
		{`1692109845000`, want},
		{`"1692109845000"`, want},
		{`"1692109845"`, want},
		{`1692109845000.0`, want},
		{`true`, time.Time{}},
		{`{}`, time.Time{}},
		{`-5`, time.Time{}},
		{`""`, time.Time{}},
		{`null`, time.Time{}},
		{`"yesterday"`, time.Time{}},
	}
	for _, tt := range tests {
		var got struct {
			T flexTime `json:"generateTime"`
		}
		require.NoError(t, json.Unmarshal([]byte(`{"generateTime":`+tt.in+`}`), &got), tt.in)
		require.True(t, tt.want.Equal(time.Time(got.T)), "%s: got %v", tt.in, time.Time(got.T))
	}
}

// TestLenientTaskFields pins the forms Kie does not promise but has sent: a failCode or
// expireFlag of any JSON type decodes, and never fails the task.
// Pins CL-11 of SECURITY.md.
func TestLenientTaskFields(t *testing.T) {
	t.Parallel()
	codes := []struct {
		in   string
		n    int
		text string
	}{
		{`400`, 400, ""},
		{`"400"`, 400, "400"},
		{`" 400 "`, 400, " 400 "},
		{`400.0`, 400, ""},
		{`""`, 0, ""},
		{`null`, 0, ""},
		{`"E_MODERATION"`, 0, "E_MODERATION"},
		{`4.5`, 0, "4.5"},
		{`true`, 0, "true"},
		{`{"a":1}`, 0, `{"a":1}`},
		{`1e99`, 0, "1e99"},
	}
	for _, tt := range codes {
		var got struct {
			C flexCode `json:"failCode"`
		}
		require.NoError(t, json.Unmarshal([]byte(`{"failCode":`+tt.in+`}`), &got), tt.in)
		require.Equal(t, tt.n, got.C.n, tt.in)
		require.Equal(t, tt.text, got.C.text, tt.in)
	}
	flags := []struct {
		in   string
		want bool
	}{
		{`1`, true}, {`"1"`, true}, {`true`, true}, {`"true"`, true},
		{`0`, false}, {`"0"`, false}, {`false`, false}, {`null`, false}, {`""`, false}, {`"yes"`, false}, {`2`, false},
	}
	for _, tt := range flags {
		var got struct {
			F flexFlag `json:"expireFlag"`
		}
		require.NoError(t, json.Unmarshal([]byte(`{"expireFlag":`+tt.in+`}`), &got), tt.in)
		require.Equal(t, tt.want, bool(got.F), tt.in)
	}
}

func TestStateKnownAndTerminal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s               State
		known, terminal bool
	}{
		{StateWait, true, false},
		{StateQueueing, true, false},
		{StateGenerating, true, false},
		{StateSuccess, true, true},
		{StateFail, true, true},
		{"", false, false},
		{"paused", false, false},
		{"SUCCESS", false, false},
		{"successFlag:2", false, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.known, tt.s.Known(), "%q", tt.s)
		require.Equal(t, tt.terminal, tt.s.Terminal(), "%q", tt.s)
	}
}

func TestDecodeAlephTaskFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data string
		want State
	}{
		{`{"taskId":"a","successFlag":1}`, StateSuccess},
		{`{"taskId":"a","successFlag":"1"}`, StateSuccess},
		{`{"taskId":"a","successFlag":0,"errorMessage":""}`, StateGenerating},
		{`{"taskId":"a","successFlag":null}`, StateGenerating},
		{`{"taskId":"a","successFlag":0,"errorMessage":"Your prompt was caught by our AI moderator"}`, StateFail},
		{`{"taskId":"a","successFlag":0,"errorCode":500,"errorMessage":""}`, StateFail},
		{`{"taskId":"a","successFlag":2}`, "successFlag:2"},
	}
	for _, tt := range tests {
		task, err := decodeAlephTask(json.RawMessage(tt.data))
		require.NoError(t, err, tt.data)
		require.Equal(t, tt.want, task.State, tt.data)
		require.True(t, task.Aleph)
	}
}

func TestTaskResult(t *testing.T) {
	t.Parallel()
	raw := json.RawMessage(`{"taskId":"t1"}`)
	ok := (&Task{ID: "t1", State: StateSuccess, VideoID: "v", VideoURL: "https://f/v.mp4", ImageURL: "https://f/c.png", Raw: raw}).Result()
	require.Equal(t, &Result{TaskID: "t1", VideoID: "v", VideoURL: "https://f/v.mp4", ImageURL: "https://f/c.png", Code: 200, Message: "success", Source: SourcePoll, Raw: raw}, ok)
	require.NoError(t, ok.Err())

	failed := (&Task{ID: "t2", State: StateFail, FailCode: 400, FailMessage: "Incorrect image format"}).Result()
	require.Equal(t, 400, failed.Code)
	require.ErrorIs(t, failed.Err(), ErrFormat)

	for _, code := range []int{0, 200} {
		r := (&Task{ID: "t3", State: StateFail, FailCode: code, FailMessage: "boom"}).Result()
		require.Equal(t, 400, r.Code, "a failed task never reads as success")
		require.ErrorIs(t, r.Err(), ErrTaskFailed)
	}

	var nilResult *Result
	require.NoError(t, nilResult.Err())
	server := (&Result{TaskID: "t4", Code: 500, Message: "internal"}).Err()
	require.ErrorIs(t, server, ErrServer)
}

// FuzzDecodeTaskLenientFields: whatever JSON value failCode, expireFlag and generateTime hold,
// a task with a string state decodes (Runway and Aleph shapes alike).
// Pins CL-11 of SECURITY.md.
func FuzzDecodeTaskLenientFields(f *testing.F) {
	f.Add(`"E_MODERATION"`, `true`, `1692109845000`)
	f.Add(`null`, `"1"`, `"2023-08-15 14:30:45"`)
	f.Add(`""`, `0`, `"2023-08-15T14:30:45Z"`)
	f.Add(`4.5`, `{}`, `[1]`)
	f.Add(`1e400`, `"x"`, `-1e300`)
	f.Fuzz(func(t *testing.T, code, flag, when string) {
		if !json.Valid([]byte(code)) || !json.Valid([]byte(flag)) || !json.Valid([]byte(when)) {
			return
		}
		runway := `{"taskId":"t","state":"fail","failCode":` + code + `,"failMsg":"m","expireFlag":` + flag + `,"generateTime":` + when + `}`
		task, err := decodeTask(json.RawMessage(runway))
		require.NoError(t, err, runway)
		require.Equal(t, StateFail, task.State)
		require.Error(t, task.Result().Err(), "a failed task stays failed")
		aleph := `{"taskId":"t","successFlag":0,"errorCode":` + code + `,"errorMessage":"m","expireFlag":` + flag + `,"completeTime":` + when + `}`
		task, err = decodeAlephTask(json.RawMessage(aleph))
		require.NoError(t, err, aleph)
		require.Equal(t, StateFail, task.State)
	})
}
