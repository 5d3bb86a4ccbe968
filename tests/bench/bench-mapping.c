/*
 * tests/bench/bench-mapping.c - records mapped per second with a twelve
 * field mapping (the js-mapper candidate plus a trimmed city), both ways.
 * Not run by make check: `make bench-mapping && ./bench-mapping [N]`.
 * Prints the median of five runs of N records (default 100000) per
 * direction, e.g. "mapping ext->botmatic 12 fields: 250000 records/s".
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#include "mapping/mapping.h"

#define RUNS 5

static const char mappings[] =
    "[{\"id\":true,\"botmatic\":{\"name\":\"id\"},\"ext\":{\"name\":\"id\","
    "\"transform\":\"int\"}},"
    "{\"botmatic\":{\"name\":\"firstname\"},\"ext\":{\"name\":\"prenom\"}},"
    "{\"botmatic\":{\"name\":\"lastname\"},\"ext\":{\"name\":\"nom\"}},"
    "{\"botmatic\":{\"name\":\"email\"},\"ext\":{\"name\":\"email\","
    "\"transform\":\"lower\"}},"
    "{\"botmatic\":{\"name\":\"phone\"},\"ext\":{\"name\":\"telephone\"}},"
    "{\"botmatic\":{\"name\":\"signup_date\",\"type\":\"date\",\"transform\":"
    "{\"date\":{\"from\":\"sql\",\"to\":\"iso8601\"}}},\"ext\":{\"name\":"
    "\"date_inscription\",\"transform\":{\"date\":{\"from\":\"iso8601\","
    "\"to\":\"sql\"}}}},"
    "{\"botmatic\":{\"name\":\"validation\",\"type\":\"number\",\"transform\":"
    "\"number\"},\"ext\":{\"name\":\"validation\"}},"
    "{\"botmatic\":{\"name\":\"account\"},\"ext\":{\"name\":\"compte\"}},"
    "{\"botmatic\":{\"name\":\"origin\"},\"ext\":{\"name\":\"provenance\"}},"
    "{\"botmatic\":{\"name\":\"school\"},\"ext\":{\"name\":\"etablissement\"}},"
    "{\"botmatic\":{\"name\":\"demarches\"},\"ext\":{\"name\":\"demarches\"}},"
    "{\"botmatic\":{\"name\":\"city\"},\"ext\":{\"name\":\"ville\","
    "\"transform\":\"trim\"}}]";

static const char ext_record[] =
    "{\"id\":4015,\"nom\":\"dflghjk\",\"prenom\":\"Botmatic\",\"email\":"
    "\"arthur@botmatic.ai\",\"telephone\":\"0612345678\",\"date_inscription\":"
    "\"2018-02-09 12:44:26\",\"validation\":1,\"compte\":\"candidat\","
    "\"provenance\":\"salon\",\"etablissement\":{\"id\":418,\"nom\":\"Turlu "
    "tutu\",\"nom_synonyme1\":\"Tointoin\",\"nom_synonyme2\":\"Ta maman\"},"
    "\"demarches\":{\"id\":\"1959\",\"date_creation\":\"2012-03-14 00:00:00\","
    "\"date_debut\":\"01/04/2012\",\"duree\":\"6\",\"type_id\":\"3\",\"statut\":"
    "\"active\"},\"ville\":\"Paris\"}";

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Returns the median records/s of RUNS runs of n maps, or -1. */
static double
bench(const struct mapping *m, const json_t *rec, enum map_side from,
    enum map_side to, long n)
{
	double rate[RUNS], t0;
	json_t *out;
	char err[256];
	long i;
	int r;

	for (r = 0; r < RUNS; r++) {
		t0 = now();
		for (i = 0; i < n; i++) {
			if (map_apply(m, rec, from, to, &out, NULL, NULL, err,
			    sizeof(err)) == -1) {
				fprintf(stderr, "bench-mapping: %s\n", err);
				return -1;
			}
			json_decref(out);
		}
		rate[r] = (double)n / (now() - t0);
	}
	qsort(rate, RUNS, sizeof(rate[0]), cmp);
	return rate[RUNS / 2];
}

int
main(int argc, char *argv[])
{
	struct map_error merr;
	struct mapping *m = NULL;
	json_t *doc = NULL, *ext = NULL, *bm = NULL;
	long n = argc > 1 ? atol(argv[1]) : 100000;
	char err[256];
	double r1, r2;
	int status = 1;

	if (n <= 0)
		n = 100000;
	if ((doc = json_loads(mappings, 0, NULL)) == NULL ||
	    (m = map_load_json(doc, "bench", NULL, &merr)) == NULL ||
	    (ext = json_loads(ext_record, 0, NULL)) == NULL ||
	    map_apply(m, ext, MAP_EXT, MAP_BOTMATIC, &bm, NULL, NULL, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "bench-mapping: setup failed\n");
		goto out;
	}
	if ((r1 = bench(m, ext, MAP_EXT, MAP_BOTMATIC, n)) < 0 ||
	    (r2 = bench(m, bm, MAP_BOTMATIC, MAP_EXT, n)) < 0)
		goto out;
	printf("mapping ext->botmatic %zu fields: %.0f records/s\n",
	    map_count(m), r1);
	printf("mapping botmatic->ext %zu fields: %.0f records/s\n",
	    map_count(m), r2);
	status = 0;
out:
	json_decref(bm);
	json_decref(ext);
	json_decref(doc);
	map_free(m);
	return status;
}
