/*
 * mapping/date.c - the date transform: {"date":{"from":F,"to":T,"tz":Z}}.
 *
 * Instants are milliseconds since the epoch, within JavaScript's Date range.
 * Calendar arithmetic is done here (proleptic Gregorian, days from civil)
 * rather than with timegm()/localtime(): those read or set the process's
 * time zone, and a mapping must not depend on, or change, global state.
 * The zone is "UTC" or a fixed offset; it applies to values that carry no
 * offset of their own (sql, patterns, ISO 8601 text without Z or +HH:MM).
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mapping/mapping_private.h"

static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
days_in_month(int64_t y, int m)
{
	static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dim[m - 1];
}

static int64_t
floordiv(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* A broken-down local time and the instant it names. */
struct civil {
	int64_t year;
	int mon, day, hour, min, sec, ms;
};

static int
civil_to_ms(const struct civil *c, int off_min, int64_t *ms)
{
	int64_t days, t;

	if (c->mon < 1 || c->mon > 12 || c->day < 1 ||
	    c->day > days_in_month(c->year, c->mon) || c->hour < 0 ||
	    c->hour > 23 || c->min < 0 || c->min > 59 || c->sec < 0 ||
	    c->sec > 59 || c->year < -300000 || c->year > 300000)
		return -1;
	days = days_from_civil(c->year, c->mon, c->day);
	t = ((days * 24 + c->hour) * 60 + c->min - off_min) * 60 + c->sec;
	t = t * 1000 + c->ms;
	if (t < -MAP__DATE_MAX_MS || t > MAP__DATE_MAX_MS)
		return -1;
	*ms = t;
	return 0;
}

static void
ms_to_civil(int64_t ms, int off_min, struct civil *c, int *wday, int *yday)
{
	int64_t t, days, secs;

	t = ms + (int64_t)off_min * 60000;
	days = floordiv(t, 86400000);
	secs = floordiv(t, 1000) - days * 86400;
	c->ms = (int)(t - floordiv(t, 1000) * 1000);
	civil_from_days(days, &c->year, &c->mon, &c->day);
	c->hour = (int)(secs / 3600);
	c->min = (int)(secs / 60 % 60);
	c->sec = (int)(secs % 60);
	if (wday != NULL)
		*wday = (int)(((days % 7) + 11) % 7);  /* 1970-01-01: Thursday */
	if (yday != NULL)
		*yday = (int)(days - days_from_civil(c->year, 1, 1));
}

static int
digits(const char *s, size_t len, size_t *i, int n, int *out)
{
	int v = 0, k;

	if (len - *i < (size_t)n)
		return -1;
	for (k = 0; k < n; k++) {
		if (s[*i + k] < '0' || s[*i + k] > '9')
			return -1;
		v = v * 10 + (s[*i + k] - '0');
	}
	*i += n;
	*out = v;
	return 0;
}

/* "+HH:MM", "+HHMM", "+HH", "Z" at s[*i]; minutes east of UTC. */
static int
parse_offset(const char *s, size_t len, size_t *i, int *off)
{
	int sign, h, m = 0;

	if (*i < len && (s[*i] == 'Z' || s[*i] == 'z')) {
		(*i)++;
		*off = 0;
		return 0;
	}
	if (*i >= len || (s[*i] != '+' && s[*i] != '-'))
		return -1;
	sign = s[*i] == '-' ? -1 : 1;
	(*i)++;
	if (digits(s, len, i, 2, &h) == -1 || h > 23)
		return -1;
	if (*i < len && s[*i] == ':')
		(*i)++;
	if (*i < len && digits(s, len, i, 2, &m) == -1)
		return -1;
	if (m > 59)
		return -1;
	*off = sign * (h * 60 + m);
	return 0;
}

/* ISO 8601 as Date.parse reads it, and SQL's "YYYY-MM-DD HH:MM:SS": a
 * date, then optionally a time (seconds and fraction optional), then an
 * optional offset. */
static int
parse_text(const char *s, size_t len, int tz_min, int64_t *ms)
{
	struct civil c = { 0 };
	size_t i = 0;
	int y, sign = 1, off = tz_min, frac = 0, scale = 100;

	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < len && (s[i] == '+' || s[i] == '-')) {
		sign = s[i] == '-' ? -1 : 1;
		i++;
		if (digits(s, len, &i, 6, &y) == -1)
			return -1;
	} else if (digits(s, len, &i, 4, &y) == -1)
		return -1;
	c.year = (int64_t)sign * y;
	c.mon = c.day = 1;
	if (i < len && s[i] == '-') {
		i++;
		if (digits(s, len, &i, 2, &c.mon) == -1)
			return -1;
		if (i < len && s[i] == '-') {
			i++;
			if (digits(s, len, &i, 2, &c.day) == -1)
				return -1;
		}
	}
	if (i < len && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
		i++;
		if (digits(s, len, &i, 2, &c.hour) == -1 || i >= len ||
		    s[i++] != ':' || digits(s, len, &i, 2, &c.min) == -1)
			return -1;
		if (i < len && s[i] == ':') {
			i++;
			if (digits(s, len, &i, 2, &c.sec) == -1)
				return -1;
			if (i < len && (s[i] == '.' || s[i] == ',')) {
				i++;
				if (i >= len || s[i] < '0' || s[i] > '9')
					return -1;
				/* Digits beyond milliseconds are dropped, as
				 * Date does. */
				while (i < len && s[i] >= '0' && s[i] <= '9') {
					frac += (s[i] - '0') * scale;
					scale /= 10;
					i++;
				}
				c.ms = frac;
			}
		}
		if (i < len && parse_offset(s, len, &i, &off) == -1)
			return -1;
	}
	if (i != len)
		return -1;
	return civil_to_ms(&c, off, ms);
}

static int
parse_pattern(const char *pattern, const char *s, size_t len, int tz_min,
    int64_t *ms)
{
	struct civil c;
	struct tm tm;
	char small[128], *p = small;
	const char *end;
	int rc = -1, off = tz_min;

	if (strlen(s) != len)
		goto out;      /* a NUL inside the text */
	if (len >= sizeof(small) && (p = malloc(len + 1)) == NULL)
		goto out;
	memcpy(p, s, len + 1);
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = 70;
	tm.tm_mday = 1;
	/* A sentinel: strptime sets tm_gmtoff only when %z matched. */
	tm.tm_gmtoff = LONG_MIN;
	if ((end = strptime(p, pattern, &tm)) == NULL)
		goto out;
	while (*end == ' ' || *end == '\t' || *end == '\n')
		end++;
	if (*end != '\0')
		goto out;
	if (tm.tm_gmtoff != LONG_MIN)
		off = (int)(tm.tm_gmtoff / 60);
	c.year = (int64_t)tm.tm_year + 1900;
	c.mon = tm.tm_mon + 1;
	c.day = tm.tm_mday;
	c.hour = tm.tm_hour;
	c.min = tm.tm_min;
	c.sec = tm.tm_sec;
	c.ms = 0;
	rc = civil_to_ms(&c, off, ms);
out:
	if (p != small)
		free(p);
	return rc;
}

/* Appends the pattern with %z, %Z and %s expanded here, since strftime
 * would take them from the process's zone; other conversions are left to
 * strftime, which reads only the struct tm. */
static int
expand_pattern(const struct map__date *d, int64_t ms, char *out, size_t n)
{
	const char *p = d->to.pattern;
	size_t o = 0;
	int w;
	char tmp[32];

	for (; *p != '\0'; p++) {
		tmp[0] = '\0';
		if (p[0] == '%' && p[1] == 'z')
			snprintf(tmp, sizeof(tmp), "%c%02d%02d",
			    d->tz_min < 0 ? '-' : '+', abs(d->tz_min) / 60,
			    abs(d->tz_min) % 60);
		else if (p[0] == '%' && p[1] == 'Z')
			snprintf(tmp, sizeof(tmp), "%s", d->tz_name);
		else if (p[0] == '%' && p[1] == 's')
			snprintf(tmp, sizeof(tmp), "%lld",
			    (long long)floordiv(ms, 1000));
		if (tmp[0] != '\0') {
			w = snprintf(out + o, n - o, "%s", tmp);
			p++;
		} else if (p[0] == '%' && p[1] != '\0') {
			w = snprintf(out + o, n - o, "%c%c", p[0], p[1]);
			p++;
		} else
			w = snprintf(out + o, n - o, "%c", p[0]);
		if (w < 0 || (size_t)w >= n - o)
			return -1;
		o += (size_t)w;
	}
	return 0;
}

static int
format_date(const struct map__date *d, int64_t ms, json_t **out, char *err,
    size_t errlen)
{
	struct civil c;
	struct tm tm;
	char buf[512], pat[512];
	int wday, yday;
	size_t n;

	switch (d->to.kind) {
	case MAP__DATE_UNIX:
		*out = json_integer(floordiv(ms, 1000));
		break;
	case MAP__DATE_UNIX_MS:
		*out = json_integer(ms);
		break;
	case MAP__DATE_ISO8601:
		/* toISOString(): always UTC, six-digit years outside 0-9999. */
		ms_to_civil(ms, 0, &c, NULL, NULL);
		if (c.year >= 0 && c.year <= 9999)
			snprintf(buf, sizeof(buf), "%04d", (int)c.year);
		else
			snprintf(buf, sizeof(buf), "%c%06d",
			    c.year < 0 ? '-' : '+', (int)llabs(c.year));
		n = strlen(buf);
		snprintf(buf + n, sizeof(buf) - n,
		    "-%02d-%02dT%02d:%02d:%02d.%03dZ", c.mon, c.day, c.hour,
		    c.min, c.sec, c.ms);
		*out = json_string(buf);
		break;
	case MAP__DATE_SQL:
		ms_to_civil(ms, d->tz_min, &c, NULL, NULL);
		if (c.year < 0 || c.year > 9999) {
			snprintf(err, errlen, "date: year %lld does not fit sql",
			    (long long)c.year);
			return -1;
		}
		snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d",
		    (int)c.year, c.mon, c.day, c.hour, c.min, c.sec);
		*out = json_string(buf);
		break;
	case MAP__DATE_PATTERN:
	default:
		ms_to_civil(ms, d->tz_min, &c, &wday, &yday);
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = (int)(c.year - 1900);
		tm.tm_mon = c.mon - 1;
		tm.tm_mday = c.day;
		tm.tm_hour = c.hour;
		tm.tm_min = c.min;
		tm.tm_sec = c.sec;
		tm.tm_wday = wday;
		tm.tm_yday = yday;
		tm.tm_gmtoff = (long)d->tz_min * 60;
		tm.tm_zone = d->tz_name;
		if (expand_pattern(d, ms, pat, sizeof(pat)) == -1 ||
		    (n = strftime(buf, sizeof(buf), pat, &tm)) == 0) {
			snprintf(err, errlen, "date: the pattern's result is "
			    "empty or longer than %zu bytes", sizeof(buf) - 1);
			return -1;
		}
		if (!map__utf8_valid(buf, n)) {
			snprintf(err, errlen, "date: the pattern's result is "
			    "not UTF-8");
			return -1;
		}
		*out = json_stringn(buf, n);
		break;
	}
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static const char *
kind_name(const struct map__date_fmt *f)
{
	switch (f->kind) {
	case MAP__DATE_ISO8601: return "iso8601";
	case MAP__DATE_SQL: return "sql";
	case MAP__DATE_UNIX: return "unix";
	case MAP__DATE_UNIX_MS: return "unix_ms";
	default: return f->pattern;
	}
}

int
map__date_apply(const struct map__date *d, const json_t *in, json_t **out,
    char *err, size_t errlen)
{
	struct map__buf b = { 0 };
	char what[64];
	json_t *num = NULL;
	int64_t ms = 0;
	double v;
	int rc = -1;

	if (d->from.kind == MAP__DATE_UNIX || d->from.kind == MAP__DATE_UNIX_MS) {
		if (json_is_string(in)) {
			if (map__str_to_number(json_string_value(in),
			    json_string_length(in), &num) != 0)
				goto bad;
			in = num;
		}
		if (json_is_integer(in))
			v = (double)json_integer_value(in);
		else if (json_is_real(in))
			v = json_real_value(in);
		else
			goto bad;
		if (d->from.kind == MAP__DATE_UNIX)
			v *= 1000;
		if (!(fabs(v) <= (double)MAP__DATE_MAX_MS))
			goto bad;
		/* Exact for integers: (double) of an int64 in range is exact
		 * up to 2^53, and the range is 8.64e15 < 2^53. */
		ms = (int64_t)trunc(v);
	} else {
		/* Numbers arrive here too: toward ext "20180209" was already
		 * parsed as JSON, and String() gives the text back. */
		if (!json_is_string(in) && !json_is_number(in))
			goto bad;
		if (map__js_string(in, &b) == -1 || b.oom)
			goto bad;
		if (b.len == 0)
			goto bad;
		if (d->from.kind == MAP__DATE_PATTERN) {
			if (parse_pattern(d->from.pattern, b.p, b.len,
			    d->tz_min, &ms) == -1)
				goto bad;
		} else if (parse_text(b.p, b.len, d->tz_min, &ms) == -1)
			goto bad;
	}
	rc = format_date(d, ms, out, err, errlen);
	goto out;
bad:
	map__describe(in, what, sizeof(what));
	snprintf(err, errlen, "date: cannot read %s as %s", what,
	    kind_name(&d->from));
out:
	json_decref(num);
	map__buf_free(&b);
	return rc;
}

static int
compile_fmt(const json_t *v, const char *which, int reading,
    struct map__date_fmt *f, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		enum map__date_kind kind;
	} names[] = {
		{ "iso8601", MAP__DATE_ISO8601 },
		{ "sql", MAP__DATE_SQL },
		{ "unix", MAP__DATE_UNIX },
		{ "unix_ms", MAP__DATE_UNIX_MS },
	};
	const char *s, *p;
	size_t i;

	if (v == NULL) {
		snprintf(err, errlen, "date.%s: missing", which);
		return -1;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "date.%s: not a string", which);
		return -1;
	}
	s = json_string_value(v);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0) {
			f->kind = names[i].kind;
			f->pattern = NULL;
			return 0;
		}
	if (strchr(s, '%') == NULL || strlen(s) != json_string_length(v) ||
	    strlen(s) > 200) {
		snprintf(err, errlen, "date.%s: unknown format \"%.60s\" (iso8601, "
		    "sql, unix, unix_ms or a strftime pattern)", which, s);
		return -1;
	}
	for (p = s; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		p++;
		/* strptime's %s reads the process's zone; "unix" says it. */
		if (reading && *p == 's') {
			snprintf(err, errlen, "date.%s: %%s cannot be read, use "
			    "\"unix\"", which);
			return -1;
		}
		if (*p == '\0') {
			snprintf(err, errlen, "date.%s: the pattern ends with %%",
			    which);
			return -1;
		}
	}
	f->kind = MAP__DATE_PATTERN;
	f->pattern = s;
	return 0;
}

static int
compile_tz(const json_t *v, struct map__date *d, char *err, size_t errlen)
{
	const char *s;
	size_t i = 0, len;
	int off;

	d->tz_min = 0;
	snprintf(d->tz_name, sizeof(d->tz_name), "UTC");
	if (v == NULL)
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "date.tz: not a string");
		return -1;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if (strcmp(s, "UTC") == 0 || strcmp(s, "GMT") == 0 ||
	    strcmp(s, "Z") == 0)
		return 0;
	if ((s[0] != '+' && s[0] != '-') || parse_offset(s, len, &i, &off) == -1 ||
	    i != len) {
		snprintf(err, errlen, "date.tz: unsupported time zone \"%.40s\" "
		    "(UTC or an offset such as +01:00)", s);
		return -1;
	}
	d->tz_min = off;
	if (off != 0)
		snprintf(d->tz_name, sizeof(d->tz_name), "%c%02d:%02d",
		    off < 0 ? '-' : '+', abs(off) / 60 % 100, abs(off) % 60);
	return 0;
}

int
map__date_compile(const json_t *params, struct map__date *d, char *err,
    size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(params)) {
		snprintf(err, errlen, "date: parameters must be an object "
		    "{\"from\":...,\"to\":...}");
		return -1;
	}
	json_object_foreach((json_t *)params, key, v) {
		if (strcmp(key, "from") != 0 && strcmp(key, "to") != 0 &&
		    strcmp(key, "tz") != 0) {
			snprintf(err, errlen, "date: unknown parameter \"%.40s\"",
			    key);
			return -1;
		}
	}
	if (compile_fmt(json_object_get(params, "from"), "from", 1, &d->from,
	    err, errlen) == -1 ||
	    compile_fmt(json_object_get(params, "to"), "to", 0, &d->to,
	    err, errlen) == -1 ||
	    compile_tz(json_object_get(params, "tz"), d, err, errlen) == -1)
		return -1;
	return 0;
}
