package gen

// newModel returns the session model of a product. Validate has checked the name.
func newModel(product string, h *host) productModel {
	switch product {
	case ProductSpamdyke:
		return newSpamdykeModel(h, false)
	case ProductICDSoft:
		return newSpamdykeModel(h, true)
	case ProductQmail:
		return newQmailModel(h)
	case ProductSmtpf:
		return newSmtpfModel(h)
	case ProductIsode:
		return newIsodeModel(h)
	case ProductMailEnable:
		return newMailEnableModel(h)
	case ProductIMail:
		return newIMailModel(h)
	}
	panic("gen: unknown product " + product)
}
