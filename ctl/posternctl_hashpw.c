/*
 * posternctl_hashpw.c - "posternctl hash-password": read a password and
 * print its yescrypt hash for a smtp_user section or a users_file line.
 *
 * Owns: reading the password (from the terminal without echo, asked
 * twice; or the first line of standard input when it is not a terminal)
 * and hashing it with crypt_gensalt_ra("$y$") + crypt_ra().
 *
 * SECURITY: needs no privileges and reads no configuration. The password
 * is never printed, never logged, and wiped from memory after hashing;
 * the terminal's echo is restored even when reading fails.
 *
 * STANDARDS: none (crypt(3) hash strings as libxcrypt writes them).
 */
#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "posternctl.h"

#define PW_MAX 1024

/* read_line - one line from fp without its newline; -1 at EOF/error */
static int
read_line(FILE *fp, char *buf, size_t len)
{
	if (fgets(buf, (int)len, fp) == NULL)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/* tty_read - prompt on the terminal and read without echo */
static int
tty_read(const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	int r;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) == -1)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == -1)
		return -1;
	r = read_line(stdin, buf, len);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	return r;
}

/* password_read - from the tty (twice, must match) or from stdin */
static int
password_read(char *pw, size_t len)
{
	char again[PW_MAX];
	int r;

	if (!isatty(STDIN_FILENO))
		return read_line(stdin, pw, len);
	if (tty_read("Password: ", pw, len) == -1 ||
	    tty_read("Again: ", again, sizeof(again)) == -1)
		return -1;
	r = strcmp(pw, again) == 0 ? 0 : -2;
	explicit_bzero(again, sizeof(again));
	return r;
}

/* posternctl_hash_password - "hash-password": print a yescrypt hash */
int
posternctl_hash_password(const char *config, int argc, char **argv)
{
	char pw[PW_MAX], *setting, *hash;
	void *data = NULL;
	int size = 0, r;

	(void)config;
	if (argc != 1) {
		fprintf(stderr, "usage: posternctl hash-password < password\n");
		return EXIT_USAGE;
	}
	if ((r = password_read(pw, sizeof(pw))) < 0 || pw[0] == '\0') {
		explicit_bzero(pw, sizeof(pw));
		fprintf(stderr, "posternctl: %s\n", r == -2 ? "the passwords differ" :
		    "no password read");
		return 1;
	}
	setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
	hash = setting != NULL ? crypt_ra(pw, setting, &data, &size) : NULL;
	explicit_bzero(pw, sizeof(pw));
	if (hash == NULL || hash[0] == '*') {
		fprintf(stderr, "posternctl: cannot hash: %s\n", strerror(errno));
		free(setting);
		free(data);
		return 1;
	}
	printf("%s\n", hash);
	explicit_bzero(data, (size_t)size);
	free(data);
	free(setting);
	return 0;
}
