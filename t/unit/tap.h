/*
 * tap.h - a tiny Test Anything Protocol producer for the C unit tests,
 * run by prove(1) from 'make check'.
 *
 *   plan(n) or done_testing(); ok(cond, fmt, ...); is_int(got, want, ...);
 *   is_str(got, want, ...); diag(fmt, ...).
 * exit status: tap_exit() / done_testing() return non-zero when a test
 * failed or the plan was not met.
 */
#ifndef POSTERN_TAP_H
#define POSTERN_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_run, tap_failed, tap_planned = -1;

/* tap_vline - print "ok N - name" or "not ok N - name" */
static inline int
tap_vline(int pass, const char *fmt, va_list ap)
{
	tap_run++;
	if (!pass)
		tap_failed++;
	printf("%sok %d - ", pass ? "" : "not ", tap_run);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	return pass;
}

/* plan - announce n tests up front */
static inline void
plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
}

/* diag - a comment line on stderr (prove shows it) */
static inline void __attribute__((format(printf, 1, 2)))
diag(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "# ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* ok - one test */
static inline int __attribute__((format(printf, 2, 3)))
ok(int pass, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = tap_vline(pass, fmt, ap);
	va_end(ap);
	return r;
}

/* is_int - compare integers, diagnosing a mismatch */
static inline int __attribute__((format(printf, 3, 4)))
is_int(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = tap_vline(got == want, fmt, ap);
	va_end(ap);
	if (!r)
		diag("     got: %lld\n#   expected: %lld", got, want);
	return r;
}

/* is_str - compare strings (NULL-safe), diagnosing a mismatch */
static inline int __attribute__((format(printf, 3, 4)))
is_str(const char *got, const char *want, const char *fmt, ...)
{
	va_list ap;
	int r, same;

	same = (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;
	va_start(ap, fmt);
	r = tap_vline(same, fmt, ap);
	va_end(ap);
	if (!r)
		diag("     got: '%s'\n#   expected: '%s'", got ? got : "(null)",
		    want ? want : "(null)");
	return r;
}

/* tap_exit - exit status: 0 only when everything planned passed */
static inline int
tap_exit(void)
{
	if (tap_planned >= 0 && tap_planned != tap_run) {
		diag("planned %d tests but ran %d", tap_planned, tap_run);
		return 255;
	}
	return tap_failed > 254 ? 254 : tap_failed;
}

/* done_testing - print the plan now (if none was given) and return the
 * exit status for main() */
static inline int
done_testing(void)
{
	if (tap_planned < 0) {
		printf("1..%d\n", tap_run);
		tap_planned = tap_run;
	}
	if (tap_failed)
		diag("failed %d of %d tests", tap_failed, tap_run);
	return tap_exit();
}

#endif
