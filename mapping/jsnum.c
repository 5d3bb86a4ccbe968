/*
 * mapping/jsnum.c - JavaScript's number conversions: Number::toString
 * (what JSON.stringify and String() print), Number(string) and
 * parseInt(string, 10).
 *
 * Where JavaScript would round through a double and lose digits, an integer
 * that fits 64 bits stays exact: js-mapper's callers never relied on the
 * rounding, and ids beyond 2^53 must survive a round trip.
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/mapping_private.h"

/* exact_int() relies on it; jansson makes it long long where it can. */
_Static_assert(sizeof(json_int_t) == sizeof(long long),
    "json_int_t must be 64 bits");

/* 2^53: doubles up to here are exact integers, as JSON integers are. */
#define SAFE_INT 9007199254740992.0

void
map__num_format(double d, char *buf, size_t n)
{
	char tmp[40], digits[24], out[48];
	int p, k = 0, e = 0, neg, i, pos, nexp;
	const char *c;

	if (isnan(d)) {
		snprintf(buf, n, "NaN");
		return;
	}
	if (isinf(d)) {
		snprintf(buf, n, d < 0 ? "-Infinity" : "Infinity");
		return;
	}
	if (d == 0) {
		snprintf(buf, n, "0");   /* -0 prints as 0 too */
		return;
	}
	/* The fewest significant digits that read back as d: the correctly
	 * rounded p-digit form is the nearest, so the first p that round
	 * trips is ECMA-262's k. */
	for (p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	neg = tmp[0] == '-';
	for (c = tmp; *c != '\0' && *c != 'e'; c++)
		if (*c >= '0' && *c <= '9' && k < (int)sizeof(digits) - 1)
			digits[k++] = *c;
	if (*c == 'e')
		e = atoi(c + 1);
	while (k > 1 && digits[k - 1] == '0')
		k--;
	digits[k] = '\0';

	/* ECMA-262 Number::toString: value = 0.digits x 10^nexp. */
	nexp = e + 1;
	pos = 0;
	if (neg)
		out[pos++] = '-';
	if (k <= nexp && nexp <= 21) {
		memcpy(out + pos, digits, k);
		pos += k;
		for (i = 0; i < nexp - k; i++)
			out[pos++] = '0';
	} else if (0 < nexp && nexp <= 21) {
		memcpy(out + pos, digits, nexp);
		pos += nexp;
		out[pos++] = '.';
		memcpy(out + pos, digits + nexp, k - nexp);
		pos += k - nexp;
	} else if (-6 < nexp && nexp <= 0) {
		out[pos++] = '0';
		out[pos++] = '.';
		for (i = 0; i < -nexp; i++)
			out[pos++] = '0';
		memcpy(out + pos, digits, k);
		pos += k;
	} else {
		out[pos++] = digits[0];
		if (k > 1) {
			out[pos++] = '.';
			memcpy(out + pos, digits + 1, k - 1);
			pos += k - 1;
		}
		pos += snprintf(out + pos, sizeof(out) - pos, "e%c%d",
		    nexp - 1 < 0 ? '-' : '+', abs(nexp - 1));
	}
	out[pos] = '\0';
	snprintf(buf, n, "%s", out);
}

json_t *
map__number_new(double d)
{
	if (!isfinite(d))
		return NULL;
	if (d == trunc(d) && fabs(d) <= SAFE_INT)
		return json_integer((json_int_t)d);   /* -0 becomes 0 */
	return json_real(d);
}

/* digits[0..len) (all decimal digits, optional sign) as an exact integer;
 * 0 when it fits json_int_t, -1 when not. */
static int
exact_int(const char *s, size_t len, json_int_t *out)
{
	int neg = 0;
	unsigned long long v = 0, lim;
	size_t i = 0;

	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i++;
	}
	if (i == len)
		return -1;
	lim = neg ? (unsigned long long)LLONG_MAX + 1 :
	    (unsigned long long)LLONG_MAX;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (lim - (unsigned)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (neg)
		*out = v == 0 ? 0 : (json_int_t)(-(long long)(v - 1) - 1);
	else
		*out = (json_int_t)v;
	return 0;
}

/* strtod on a copy: s is not NUL-terminated.  The syntax has been checked
 * already, so only the value matters. */
static int
to_double(const char *s, size_t len, double *d)
{
	char small[64], *p = small;

	if (len >= sizeof(small) && (p = malloc(len + 1)) == NULL)
		return 1;
	memcpy(p, s, len);
	p[len] = '\0';
	*d = strtod(p, NULL);
	if (p != small)
		free(p);
	return 0;
}

static int
finish(double d, json_t **out)
{
	if (!isfinite(d))
		return -1;
	if ((*out = map__number_new(d)) == NULL)
		return 1;
	return 0;
}

static int
radix_digit(char c, int radix)
{
	int v;

	if (c >= '0' && c <= '9')
		v = c - '0';
	else if (c >= 'a' && c <= 'z')
		v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'Z')
		v = c - 'A' + 10;
	else
		return -1;
	return v < radix ? v : -1;
}

int
map__str_to_number(const char *s, size_t len, json_t **out)
{
	json_int_t iv;
	double d = 0;
	size_t i = 0, nd = 0;
	int radix = 0, dv;

	map__js_trim(&s, &len);
	if (len == 0)
		return finish(0, out);
	if (len >= 2 && s[0] == '0') {
		if (s[1] == 'x' || s[1] == 'X')
			radix = 16;
		else if (s[1] == 'o' || s[1] == 'O')
			radix = 8;
		else if (s[1] == 'b' || s[1] == 'B')
			radix = 2;
	}
	if (radix != 0) {
		/* No sign and no fraction: JavaScript's NonDecimalIntegerLiteral. */
		if (len == 2)
			return -1;
		for (i = 2; i < len; i++) {
			if ((dv = radix_digit(s[i], radix)) < 0)
				return -1;
			d = d * radix + dv;
		}
		return finish(d, out);
	}
	if (exact_int(s, len, &iv) == 0) {
		if ((*out = json_integer(iv)) == NULL)
			return 1;
		return 0;
	}
	/* StrDecimalLiteral: [+-] (digits [. digits] | . digits) [e [+-] digits],
	 * or Infinity, which JSON cannot hold. */
	if (s[i] == '+' || s[i] == '-')
		i++;
	if (len - i == 8 && memcmp(s + i, "Infinity", 8) == 0)
		return -1;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		i++;
		nd++;
	}
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			i++;
			nd++;
		}
	}
	if (nd == 0)
		return -1;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i == len || s[i] < '0' || s[i] > '9')
			return -1;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i != len)
		return -1;
	if (to_double(s, len, &d) != 0)
		return 1;
	return finish(d, out);
}

int
map__parse_int(const char *s, size_t len, json_t **out)
{
	json_int_t iv;
	double d;
	size_t start, i, n;
	uint32_t cp;

	/* Leading white space only: parseInt stops at the first non-digit. */
	while (len > 0) {
		n = map__utf8_decode(s, len, &cp);
		if (!map__js_space(cp))
			break;
		s += n;
		len -= n;
	}
	start = 0;
	i = 0;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	if (i == len || s[i] < '0' || s[i] > '9')
		return -1;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	if (exact_int(s + start, i - start, &iv) == 0) {
		if ((*out = json_integer(iv)) == NULL)
			return 1;
		return 0;
	}
	if (to_double(s + start, i - start, &d) != 0)
		return 1;
	return finish(d, out);
}
