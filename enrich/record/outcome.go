package record

// OutcomeVersion is the version of the outcome vocabulary below. Bump it whenever a label is
// added, removed or its meaning changes, so stored records say which vocabulary labelled them.
const OutcomeVersion = 1

// Outcome is a unified label for what happened to a recipient or a whole session. A label
// names the reason; whether it was permanent is a separate boolean taken from the reply code.
type Outcome string

// The unified vocabulary (FORMATS.md §7, modelled on spamdyke).
const (
	OutcomeNone            Outcome = ""
	Allowed                Outcome = "ALLOWED"
	DeniedRBL              Outcome = "DENIED_RBL"
	DeniedRHSBL            Outcome = "DENIED_RHSBL"
	DeniedRDNS             Outcome = "DENIED_RDNS"
	DeniedHELO             Outcome = "DENIED_HELO"
	DeniedBlacklist        Outcome = "DENIED_BLACKLIST"
	DeniedSender           Outcome = "DENIED_SENDER"
	DeniedGreylist         Outcome = "DENIED_GREYLIST"
	DeniedRelay            Outcome = "DENIED_RELAY"
	DeniedAuthRequired     Outcome = "DENIED_AUTH_REQUIRED"
	AuthFailed             Outcome = "AUTH_FAILED"
	DeniedSPF              Outcome = "DENIED_SPF"
	DeniedVirus            Outcome = "DENIED_VIRUS"
	DeniedSpamScore        Outcome = "DENIED_SPAM_SCORE"
	DeniedContent          Outcome = "DENIED_CONTENT"
	DeniedUnknownRecipient Outcome = "DENIED_UNKNOWN_RECIPIENT"
	DeniedRecipient        Outcome = "DENIED_RECIPIENT"
	DeniedProtocol         Outcome = "DENIED_PROTOCOL"
	DeniedRateLimit        Outcome = "DENIED_RATE_LIMIT"
	DeniedSize             Outcome = "DENIED_SIZE"
	DeniedPolicy           Outcome = "DENIED_POLICY"
	DeniedOther            Outcome = "DENIED_OTHER"
	TempFail               Outcome = "TEMPFAIL"
	Timeout                Outcome = "TIMEOUT"
	Disconnected           Outcome = "DISCONNECTED"
	TLSFailed              Outcome = "TLS_FAILED"
	Encrypted              Outcome = "ENCRYPTED"
	Error                  Outcome = "ERROR"
)

// Stage is the SMTP phase a label decides at. The session roll-up prefers the earliest stage:
// connection-level filters before sender-level, before recipient-level, before content-level.
type Stage uint8

const (
	StageNone       Stage = iota
	StageConnection       // decided on who connects: IP, PTR, HELO, protocol behaviour
	StageSender           // decided on MAIL FROM or AUTH
	StageRecipient        // decided on RCPT TO
	StageContent          // decided on DATA
	StageAbort            // no verdict: timeouts, drops, faults, invisible TLS
)

var outcomes = map[Outcome]Stage{
	Allowed:                StageNone,
	DeniedRBL:              StageConnection,
	DeniedRHSBL:            StageConnection,
	DeniedRDNS:             StageConnection,
	DeniedHELO:             StageConnection,
	DeniedBlacklist:        StageConnection,
	DeniedProtocol:         StageConnection,
	DeniedRateLimit:        StageConnection,
	DeniedPolicy:           StageConnection,
	DeniedSender:           StageSender,
	DeniedSPF:              StageSender,
	DeniedAuthRequired:     StageSender,
	AuthFailed:             StageSender,
	DeniedGreylist:         StageRecipient,
	DeniedRelay:            StageRecipient,
	DeniedUnknownRecipient: StageRecipient,
	DeniedRecipient:        StageRecipient,
	DeniedVirus:            StageContent,
	DeniedSpamScore:        StageContent,
	DeniedContent:          StageContent,
	DeniedSize:             StageContent,
	DeniedOther:            StageContent,
	TempFail:               StageContent,
	Timeout:                StageAbort,
	Disconnected:           StageAbort,
	TLSFailed:              StageAbort,
	Encrypted:              StageAbort,
	Error:                  StageAbort,
}

// Outcomes lists every label of the vocabulary, in a stable order (for tests, enums and docs).
func Outcomes() []Outcome {
	return []Outcome{Allowed, DeniedRBL, DeniedRHSBL, DeniedRDNS, DeniedHELO, DeniedBlacklist,
		DeniedSender, DeniedGreylist, DeniedRelay, DeniedAuthRequired, AuthFailed, DeniedSPF,
		DeniedVirus, DeniedSpamScore, DeniedContent, DeniedUnknownRecipient, DeniedRecipient,
		DeniedProtocol, DeniedRateLimit, DeniedSize, DeniedPolicy, DeniedOther, TempFail, Timeout,
		Disconnected, TLSFailed, Encrypted, Error}
}

// Valid reports whether o is a label of the vocabulary.
func (o Outcome) Valid() bool { _, ok := outcomes[o]; return ok }

// Stage returns the SMTP phase the label decides at.
func (o Outcome) Stage() Stage { return outcomes[o] }

// Denied reports whether the label is a refusal (anything but ALLOWED and the no-verdict labels).
func (o Outcome) Denied() bool {
	s := outcomes[o]
	return s >= StageConnection && s <= StageContent
}

// Delivery is the post-acceptance result, kept apart from the SMTP-time outcome.
type Delivery string

const (
	DeliveryNone      Delivery = ""
	DeliveryDelivered Delivery = "DELIVERED"
	DeliveryDeferred  Delivery = "DEFERRED"
	DeliveryBounced   Delivery = "BOUNCED"
)

// ClosedBy says why a session record was emitted.
type ClosedBy string

const (
	ClosedByEnd     ClosedBy = "end"     // the product logged the session's end
	ClosedByTimeout ClosedBy = "timeout" // idle longer than the timeout in event time
	ClosedByEvicted ClosedBy = "evicted" // pushed out by the cap on open sessions
	ClosedByEOF     ClosedBy = "eof"     // end of input (offline runs, shutdown flush)
)
