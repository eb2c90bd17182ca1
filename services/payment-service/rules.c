/*
 * rules: the contract's deterministic payment simulation. No I/O, so that
 * unit tests (and lessons) can pin every row of the table.
 */
#include <stdint.h>
#include <string.h>

#include "payment.h"

enum payment_verdict payment_decide(const char *token, long long total_cents)
{
	/* The limit comes first: no token, however good, pays above it. */
	if (total_cents > PAYMENT_LIMIT_CENTS)
		return PAYMENT_LIMIT_EXCEEDED;
	if (!token)
		return PAYMENT_CARD_DECLINED;
	if (!strcmp(token, "tok_visa") || !strcmp(token, "tok_mastercard") ||
	    !strncmp(token, "tok_ok", strlen("tok_ok")))
		return PAYMENT_APPROVED;
	if (!strcmp(token, "tok_insufficient_funds"))
		return PAYMENT_INSUFFICIENT_FUNDS;
	/* tok_declined, and every token the table does not name. */
	return PAYMENT_CARD_DECLINED;
}

const char *payment_verdict_reason(enum payment_verdict v)
{
	switch (v) {
	case PAYMENT_APPROVED:
		return NULL;
	case PAYMENT_CARD_DECLINED:
		return "CARD_DECLINED";
	case PAYMENT_INSUFFICIENT_FUNDS:
		return "INSUFFICIENT_FUNDS";
	case PAYMENT_LIMIT_EXCEEDED:
		return "LIMIT_EXCEEDED";
	}
	return "CARD_DECLINED";
}

bool payment_fault_declines(const char *order_id, long percent)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	if (percent <= 0 || !order_id)
		return false;
	for (const char *p = order_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return (long)(h % 100) < percent;
}
