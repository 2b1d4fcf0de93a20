package replicate

// WithDefaults returns o with every zero setting replaced by the default a
// client uses for it, so callers can show (log, document) the settings that
// are actually in effect rather than zero values.
func (o ClientOptions) WithDefaults() ClientOptions {
	o.setDefaults()
	return o
}
