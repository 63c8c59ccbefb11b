package parse

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/vjeantet/grok"
)

// The grok engine. Pattern files are ordinary grok ("NAME expression" per line). An
// expression made only of literal text (regex metacharacters escaped with a backslash) and
// %{NAME} / %{NAME:capture} references to the primitives below or to other such patterns is
// compiled into a token list and matched by hand-written byte code: anchored at both ends,
// no allocation, and — because every primitive is either a character-class run (greedy, with
// backtracking to shorter runs) or .*? / .* — with the same result as the regular expression
// vjeantet/grok builds from the same text (the differential test checks this on every test
// line). Any other expression (a user's pattern with raw regex) is compiled by vjeantet/grok
// and run through it: correct, but slower and allocating.

type primKind uint8

const (
	primClass  primKind = iota // a run of bytes of one class, min length 1
	primLazy                   // .*?
	primGreedy                 // .*
	primFixed                  // fixed-length run of one class
)

type prim struct {
	kind  primKind
	class *[256]bool
	n     int    // primFixed: length
	regex string // what vjeantet/grok compiles for it (differential tests, fallback)
	word  bool   // \b on both sides (WORD)
	empty bool   // primClass: the run may be empty
}

func classOf(f func(c byte) bool) *[256]bool {
	var t [256]bool
	for i := 0; i < 256; i++ {
		t[i] = f(byte(i))
	}
	return &t
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }
func isAlnum(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isWord(c byte) bool  { return isAlnum(c) || c == '_' }

// prims are the primitives the fast engine runs natively. Names starting with MX_ are ours;
// the others keep vjeantet/grok's meaning exactly.
var prims = map[string]prim{
	"NOTSPACE":   {kind: primClass, class: classOf(func(c byte) bool { return !isSpace(c) }), regex: `\S+`},
	"DATA":       {kind: primLazy, regex: `.*?`},
	"GREEDYDATA": {kind: primGreedy, regex: `.*`},
	"WORD":       {kind: primClass, class: classOf(isWord), regex: `\b\w+\b`, word: true},
	"MX_DIGITS":  {kind: primClass, class: classOf(isDigit), regex: `[0-9]+`},
	"MX_HEX":     {kind: primClass, class: classOf(isHex), regex: `[0-9A-Fa-f]+`},
	"MX_ALNUM":   {kind: primClass, class: classOf(isAlnum), regex: `[0-9A-Za-z]+`},
	// MX_IP is the character set of IPv4 and IPv6 literals; it does not validate.
	"MX_IP":         {kind: primClass, class: classOf(func(c byte) bool { return isHex(c) || c == '.' || c == ':' }), regex: `[0-9A-Fa-f.:]+`},
	"MX_NOCOMMA":    {kind: primClass, class: classOf(func(c byte) bool { return c != ',' && c != '\n' }), regex: `[^,\n]+`},
	"MX_NOTAB":      {kind: primClass, class: classOf(func(c byte) bool { return c != '\t' && c != '\n' }), regex: `[^\t\n]+`},
	"MX_NOQUOTE":    {kind: primClass, class: classOf(func(c byte) bool { return c != '"' && c != '\n' }), regex: `[^"\n]+`},
	"MX_NOPAREN":    {kind: primClass, class: classOf(func(c byte) bool { return c != ')' && c != '(' && c != '\n' }), regex: `[^()\n]+`},
	"MX_NOBRACKET":  {kind: primClass, class: classOf(func(c byte) bool { return c != ']' && c != '[' && c != '\n' }), regex: `[^\[\]\n]+`},
	"MX_NOANGLE":    {kind: primClass, class: classOf(func(c byte) bool { return c != '>' && c != '<' && c != '\n' }), regex: `[^<>\n]+`},
	"MX_UPPER":      {kind: primClass, class: classOf(func(c byte) bool { return (c >= 'A' && c <= 'Z') || c == '_' || isDigit(c) }), regex: `[A-Z0-9_]+`},
	"MX_NOTABOPT":   {kind: primClass, class: classOf(func(c byte) bool { return c != '\t' && c != '\n' }), regex: `[^\t\n]*`, empty: true},
	"MX_OPTSPACE":   {kind: primClass, class: classOf(func(c byte) bool { return c == ' ' }), regex: ` *`, empty: true},
	"MX_NOQUOTEOPT": {kind: primClass, class: classOf(func(c byte) bool { return c != '"' && c != '\n' }), regex: `[^"\n]*`, empty: true},
	"MX_CHKPART":    {kind: primClass, class: classOf(func(c byte) bool { return c != ':' && c != '<' && c != '>' && c != '\n' }), regex: `[^:<>\n]*`, empty: true},
	"MX_SPACES":     {kind: primClass, class: classOf(func(c byte) bool { return c == ' ' }), regex: ` +`},
	"MX_SID":        {kind: primFixed, n: 18, class: classOf(isAlnum), regex: `[0-9A-Za-z]{18}`},
	"MX_TAI64N":     {kind: primFixed, n: 24, class: classOf(isHex), regex: `[0-9A-Fa-f]{24}`},
}

const regexMeta = `.()[]{}*+?|^$\`

type tokKind uint8

const (
	tokLit tokKind = iota
	tokPrim
	tokOpen  // start of a composite capture
	tokClose // end of a composite capture
)

type token struct {
	kind tokKind
	lit  []byte
	p    *prim
	slot int // capture slot, -1 for none
}

// Pattern is one compiled top-level grok expression.
type Pattern struct {
	Name    string
	Expr    string
	Names   []string // capture names by slot
	toks    []token
	slow    bool   // run through vjeantet/grok
	slowKey string // the expression handed to vjeantet/grok
}

// compiler expands grok definitions.
type compiler struct {
	defs map[string]string
	g    *grok.Grok
}

func newCompiler(defs map[string]string) (*compiler, error) {
	g, err := grok.NewWithConfig(&grok.Config{NamedCapturesOnly: true})
	if err != nil {
		return nil, fmt.Errorf("start grok: %w", err)
	}
	// One AddPatternsFromMap: vjeantet/grok rebuilds every pattern on each AddPattern call.
	all := make(map[string]string, len(defs)+len(prims))
	for name, p := range prims {
		all[name] = p.regex
	}
	for n, d := range defs {
		if _, isPrim := prims[n]; !isPrim {
			all[n] = d
		}
	}
	if err := g.AddPatternsFromMap(all); err != nil {
		return nil, namePatternError(all, err)
	}
	return &compiler{defs: defs, g: g}, nil
}

// compile compiles the named top-level pattern.
func (c *compiler) compile(name string) (*Pattern, error) {
	expr, ok := c.defs[name]
	if !ok {
		return nil, fmt.Errorf("compile grok pattern %q: not defined", name)
	}
	p := &Pattern{Name: name, Expr: expr}
	toks, err := c.tokens(expr, p, 0)
	if err == errNeedsRegex {
		p.slow, p.toks = true, nil
		p.slowKey = "^" + strings.TrimSuffix(strings.TrimPrefix(expr, "^"), "$") + "$"
		p.Names = nil
		for _, m := range captureRE.FindAllStringSubmatch(c.expandAll(expr, 0), -1) {
			p.Names = append(p.Names, m[1])
		}
	} else if err != nil {
		return nil, fmt.Errorf("compile grok pattern %q: %w", name, err)
	} else {
		p.toks = mergeLits(toks)
	}
	// Every pattern also goes through vjeantet/grok at start-up: it is the reference grammar,
	// and compiling it now (before any goroutine) fills grok's cache safely.
	if _, err := c.g.Parse(c.refExpr(p), ""); err != nil {
		return nil, fmt.Errorf("compile grok pattern %q: %w", name, err)
	}
	return p, nil
}

func (c *compiler) refExpr(p *Pattern) string {
	if p.slow {
		return p.slowKey
	}
	return "^" + strings.TrimSuffix(strings.TrimPrefix(p.Expr, "^"), "$") + "$"
}

var refRE = regexp.MustCompile(`%\{(\w+)(?::[\w\[\]]+)*\}`)

// namePatternError turns vjeantet/grok's error into one that names the definition that
// references an undefined pattern, when that is the cause.
func namePatternError(all map[string]string, err error) error {
	ref, _ := grok.New()
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, m := range refRE.FindAllStringSubmatch(all[n], -1) {
			if _, ok := all[m[1]]; ok {
				continue
			}
			if _, e := ref.Parse("%{"+m[1]+"}", ""); e != nil {
				return fmt.Errorf("compile grok pattern %q: reference to undefined pattern %q", n, m[1])
			}
		}
	}
	return fmt.Errorf("compile grok patterns: %w", err)
}

var captureRE = regexp.MustCompile(`%\{\w+:(\w+)(?::\w+)?\}`)

func (c *compiler) expandAll(expr string, depth int) string {
	if depth > 20 {
		return expr
	}
	return regexp.MustCompile(`%\{(\w+)\}`).ReplaceAllStringFunc(expr, func(m string) string {
		n := m[2 : len(m)-1]
		if d, ok := c.defs[n]; ok {
			return c.expandAll(d, depth+1)
		}
		return m
	})
}

var errNeedsRegex = fmt.Errorf("needs the regex engine")

func (c *compiler) tokens(expr string, p *Pattern, depth int) ([]token, error) {
	if depth > 20 {
		return nil, fmt.Errorf("pattern references nest deeper than 20 (a cycle?)")
	}
	if depth == 0 {
		expr = strings.TrimPrefix(expr, "^")
		if strings.HasSuffix(expr, "$") && !strings.HasSuffix(expr, `\$`) {
			expr = expr[:len(expr)-1]
		}
	}
	var toks []token
	for i := 0; i < len(expr); {
		ch := expr[i]
		switch {
		case ch == '%' && i+1 < len(expr) && expr[i+1] == '{':
			end := strings.IndexByte(expr[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed %%{ at %q", expr[i:])
			}
			ref := expr[i+2 : i+end]
			i += end + 1
			parts := strings.Split(ref, ":")
			name, capName := parts[0], ""
			if len(parts) > 1 {
				capName = parts[1]
			}
			slot := -1
			if capName != "" {
				slot = len(p.Names)
				p.Names = append(p.Names, capName)
			}
			if pr, ok := prims[name]; ok {
				pr := pr
				toks = append(toks, token{kind: tokPrim, p: &pr, slot: slot})
				continue
			}
			def, ok := c.defs[name]
			if !ok {
				return nil, fmt.Errorf("reference to undefined pattern %q", name)
			}
			sub, err := c.tokens(def, p, depth+1)
			if err != nil {
				return nil, err
			}
			if slot >= 0 {
				toks = append(toks, token{kind: tokOpen, slot: slot})
				toks = append(toks, sub...)
				toks = append(toks, token{kind: tokClose, slot: slot})
			} else {
				toks = append(toks, sub...)
			}
		case ch == '\\' && i+1 < len(expr) && expr[i+1] == 't':
			toks = append(toks, token{kind: tokLit, lit: []byte{'\t'}, slot: -1})
			i += 2
		case ch == '\\':
			if i+1 >= len(expr) || !strings.ContainsRune(regexMeta+`/-"<>:,#=@!&%'`+" ", rune(expr[i+1])) {
				return nil, errNeedsRegex
			}
			toks = append(toks, token{kind: tokLit, lit: []byte{expr[i+1]}, slot: -1})
			i += 2
		case strings.IndexByte(regexMeta, ch) >= 0:
			return nil, errNeedsRegex
		default:
			toks = append(toks, token{kind: tokLit, lit: []byte{ch}, slot: -1})
			i++
		}
	}
	return toks, nil
}

func mergeLits(in []token) []token {
	var out []token
	for _, t := range in {
		if t.kind == tokLit && len(out) > 0 && out[len(out)-1].kind == tokLit {
			out[len(out)-1].lit = append(out[len(out)-1].lit, t.lit...)
			continue
		}
		if t.kind == tokLit {
			t.lit = append([]byte(nil), t.lit...)
		}
		out = append(out, t)
	}
	return out
}

// span is a capture [start, end) in the line; start < 0 means unset.
type span struct{ start, end int32 }

// match runs the fast engine; caps must have len(p.Names) entries.
func (p *Pattern) match(line []byte, caps []span) bool {
	for i := range caps {
		caps[i] = span{-1, -1}
	}
	return p.m(line, 0, 0, caps)
}

func (p *Pattern) m(line []byte, ti, pos int, caps []span) bool {
	for ti < len(p.toks) {
		t := &p.toks[ti]
		switch t.kind {
		case tokLit:
			if !bytes.HasPrefix(line[pos:], t.lit) {
				return false
			}
			pos += len(t.lit)
			ti++
			continue
		case tokOpen:
			caps[t.slot].start = int32(pos)
			ti++
			continue
		case tokClose:
			caps[t.slot].end = int32(pos)
			ti++
			continue
		}
		pr := t.p
		switch pr.kind {
		case primFixed:
			if len(line)-pos < pr.n {
				return false
			}
			for k := pos; k < pos+pr.n; k++ {
				if !pr.class[line[k]] {
					return false
				}
			}
			setCap(caps, t.slot, pos, pos+pr.n)
			pos += pr.n
			ti++
			continue
		case primClass:
			if pr.word && pos > 0 && isWord(line[pos-1]) {
				return false
			}
			e := pos
			for e < len(line) && pr.class[line[e]] {
				e++
			}
			if e == pos && !pr.empty {
				return false
			}
			if pr.word || ti+1 == len(p.toks) {
				// \b\w+\b cannot end inside a word run; at the end of the pattern only the
				// whole run can reach the end of the line.
				setCap(caps, t.slot, pos, e)
				pos = e
				ti++
				continue
			}
			lo := pos + 1
			if pr.empty {
				lo = pos
			}
			// The next token that consumes input: capture marks in between consume none.
			j := ti + 1
			for j < len(p.toks) && (p.toks[j].kind == tokOpen || p.toks[j].kind == tokClose) {
				j++
			}
			if j == len(p.toks) {
				// only the capture marks follow: the run must reach the end of the line
				if e != len(line) {
					return false
				}
				setCap(caps, t.slot, pos, e)
				return p.m(line, ti+1, e, caps)
			}
			if next := &p.toks[j]; next.kind == tokLit {
				// Only an end where the next literal's first byte sits can match: jump
				// between those from the right (backtracking byte by byte over a long
				// class run, copying the next token each step, was the parser's hot loop).
				c := next.lit[0]
				for {
					hi := min(e, len(line)-1)
					if hi < lo {
						return false
					}
					k := bytes.LastIndexByte(line[lo:hi+1], c)
					if k < 0 {
						return false
					}
					e = lo + k
					setCap(caps, t.slot, pos, e)
					if p.m(line, ti+1, e, caps) {
						return true
					}
					e--
				}
			}
			for ; e >= lo; e-- {
				setCap(caps, t.slot, pos, e)
				if p.m(line, ti+1, e, caps) {
					return true
				}
			}
			return false
		case primLazy, primGreedy:
			limit := len(line)
			if nl := bytes.IndexByte(line[pos:], '\n'); nl >= 0 {
				limit = pos + nl
			}
			if ti+1 == len(p.toks) {
				if limit != len(line) {
					return false
				}
				setCap(caps, t.slot, pos, limit)
				return true
			}
			next := p.toks[ti+1]
			if pr.kind == primLazy {
				for e := pos; e <= limit; e++ {
					if next.kind == tokLit {
						k := bytes.IndexByte(line[e:limit], next.lit[0])
						if k < 0 {
							return false
						}
						e += k
					}
					setCap(caps, t.slot, pos, e)
					if p.m(line, ti+1, e, caps) {
						return true
					}
				}
				return false
			}
			for e := limit; e >= pos; e-- {
				if next.kind == tokLit {
					k := bytes.LastIndexByte(line[pos:min(e+1, len(line))], next.lit[0])
					if k < 0 {
						return false
					}
					e = pos + k
				}
				setCap(caps, t.slot, pos, e)
				if p.m(line, ti+1, e, caps) {
					return true
				}
			}
			return false
		}
	}
	return pos == len(line)
}

func setCap(caps []span, slot, s, e int) {
	if slot >= 0 {
		caps[slot] = span{int32(s), int32(e)}
	}
}
