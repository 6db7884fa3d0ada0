package policy

// Load takes a parsed policy through the steps every user of a policy needs,
// in their order: Validate (the spec, every problem with its field path),
// Supported (what this version of Vigil implements) and Compile (what only
// the whole policy shows: limits across selectors, actions a hook kind
// cannot take). The error is the first step's that failed; a FieldErrors
// when it names fields.
func Load(p *TracingPolicy) (*Program, error) {
	if err := Validate(p); err != nil {
		return nil, err
	}
	if err := Supported(p); err != nil {
		return nil, err
	}
	return Compile(p)
}
