package runwaytest

// Failure outcomes for each message class Kie documents for task details and callbacks.
// runway.Classify maps each to the class its name says.

// FailModeration is a moderation failure ("Your prompt was caught by our AI moderator...").
func FailModeration() Outcome {
	return Failure(400, "Your prompt was caught by our AI moderator. Please adjust it and try again!")
}

// FailFormat is an input-format failure ("Incorrect image format.").
func FailFormat() Outcome { return Failure(400, "Incorrect image format.") }

// FailQuota is a plan-quota failure ("...upgrade to Standard membership...").
func FailQuota() Outcome {
	return Failure(400, "Please try again later. You can upgrade to Standard membership to start generating now.")
}

// FailConcurrency is the concurrent-generation limit ("Reached the limit for concurrent generations.").
func FailConcurrency() Outcome { return Failure(400, "Reached the limit for concurrent generations.") }

// FailSize is an unsupported-size failure ("Unsupported width or height...").
func FailSize() Outcome {
	return Failure(400, "Unsupported width or height. Please adjust the size and try again.")
}

// FailInput is an input failure (the 2048-character prompt message).
func FailInput() Outcome {
	return Failure(400, "Your prompt/negative prompt cannot exceed 2048 characters. Please check if your input is too long.")
}

// FailTransient is a transient failure ("Upload failed due to network reasons, please re-enter.").
func FailTransient() Outcome {
	return Failure(400, "Upload failed due to network reasons, please re-enter.")
}

// FailServer is a server-side generation failure (code 500, no more specific message).
func FailServer() Outcome { return Failure(500, "Internal server error") }

// FailUnknown is a failure with a message no class matches.
func FailUnknown() Outcome { return Failure(400, "Generation failed, please try again later") }

// DocumentedFailures returns every failure message the API reference lists, verbatim with code
// 400, plus FailServer and FailUnknown, so that a test can cover every class.
func DocumentedFailures() []Outcome {
	msgs := []string{
		"Detected inappropriate content, please try replacing the video.",
		"HD quality free trials complete. Subscribe now to continue creating in high resolution.",
		"Inappropriate content detected. Please replace the image or video.",
		"Please try again later. You can upgrade to Standard membership to start generating now.",
		"Reached the limit for concurrent generations.",
		"Unsupported width or height. Please adjust the size and try again.",
		"Upload failed due to network reasons, please re-enter",
		"Your prompt was caught by our AI moderator.",
		"Your prompt has triggered our AI moderator, please re-enter your prompt",
		"Your prompt/negative prompt cannot exceed 2048 characters. Please check if your input is too long.",
		"Your video creation prompt contains NSFW content, which isn't allowed under our policy. Kindly revise your prompt and generate again.",
		"Incorrect image format",
		"Get image info failed.",
		"get image info failed.",
	}
	out := make([]Outcome, 0, len(msgs)+2)
	for _, m := range msgs {
		out = append(out, Failure(400, m))
	}
	return append(out, FailServer(), FailUnknown())
}
