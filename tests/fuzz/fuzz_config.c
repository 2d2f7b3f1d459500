/*
 * fuzz_config.c - the configuration's parsers against arbitrary bytes.
 *
 * Input: byte 0 picks what is parsed, the rest is the text.
 *   0  size, duration, bool, number and host:port parsers on the text. A
 *      value that parses must format back to text that parses to the same
 *      value; host:port must respect the host buffer and the port range.
 *   1  the text as a config file (INI, fed from memory). When it loads, the
 *      cross-setting rules hold and --print-config never shows token_keys.
 *   2  the text split at NUL bytes into command-line arguments.
 * The settings table is reached by including config.c.
 */
#include "../../src/base/config.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static void values(const char *s)
{
	char host[64], back[64];
	uint64_t v, w;
	unsigned port, u;
	bool b;

	if (ld_parse_size(s, &v) == 0) {
		ld_format_size(v, back, sizeof(back));
		check(ld_parse_size(back, &w) == 0 && w == v);
	}
	if (ld_parse_duration_ms(s, &v) == 0) {
		ld_format_duration_ms(v, back, sizeof(back));
		check(ld_parse_duration_ms(back, &w) == 0 && w == v);
	}
	if (ld_parse_bool(s, &b) == 0)
		check(strlen(s) <= 5);
	if (ld_parse_uint(s, &u) == 0) {
		snprintf(back, sizeof(back), "%u", u);
		check(ld_parse_uint(back, &u) == 0);
	}
	memset(host, 'x', sizeof(host));
	port = 0;
	if (ld_parse_hostport(s, host, 16, &port) == 0) {
		check(strlen(host) < 16);
		check(port >= 1 && port <= 65535);
		check(strstr(s, host) != NULL);
	} else {
		check(port == 0);
	}
}

/* print_config returns what --print-config shows for c (malloc'd). */
static char *print_config(const struct ld_config *c)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	check(f != NULL);
	ld_config_print(c, f);
	fclose(f);
	return out;
}

static void check_loaded(const struct ld_config *c)
{
	struct ld_config other;
	char *out, *out_other;

	check(c->write_batch <= c->write_queue);
	check(c->max_header_line <= c->max_headers);
	check(c->listen_port >= 1 && c->listen_port <= 65535);
	check(c->threads <= 256 && c->max_fields >= 1 && c->max_fields <= 256);
	check(c->argon2_mem >= 8192 && c->argon2_ops >= 1);
	check(memchr(c->token_keys, '\0', sizeof(c->token_keys)) != NULL);
	/* The secret has no effect on the print: the same configuration with
	 * other keys prints the same bytes. (Searching the print for the
	 * secret's text misfires when the secret is, say, a setting's name.)
	 * Keys that are set print as "(set)" whatever they are. */
	if (!c->token_keys[0])
		return; /* no keys: nothing secret, and the print says "(unset)" */
	out = print_config(c);
	other = *c;
	snprintf(other.token_keys, sizeof(other.token_keys), "%s",
		 strcmp(c->token_keys, "k1:other") ? "k1:other" : "k2:other");
	out_other = print_config(&other);
	check(strcmp(out, out_other) == 0);
	free(out);
	free(out_other);
}

static void file(const uint8_t *data, size_t size)
{
	struct ld_config c;
	char err[512];
	bool secret = false;
	FILE *f = fmemopen((void *)data, size, "r");

	if (!f)
		return;
	ld_config_defaults(&c);
	err[0] = '\0';
	if (load_stream(&c, f, "fuzz.ini", &secret, err, sizeof(err)) == 0 &&
	    validate(&c, err, sizeof(err)) == 0)
		check_loaded(&c);
	else
		check(strncmp(err, "fuzz.ini:", 9) == 0 || strstr(err, "larger than") != NULL);
	fclose(f);
}

static void flags(const uint8_t *data, size_t size)
{
	struct ld_config c;
	char *copy = malloc(size + 1), *argv[34], err[512];
	int argc = 0, rc;
	size_t i = 0;

	if (!copy)
		return;
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = "serve";
	while (i <= size && argc < 33) {
		argv[argc++] = copy + i;
		i += strlen(copy + i) + 1;
	}
	argv[argc] = NULL;
	/* --help, --print-config and --config would print or read files: keep
	 * the run about parsing. */
	for (i = 1; i < (size_t)argc; i++)
		if (!strcmp(argv[i], "-h") || !strncmp(argv[i], "--help", 6) ||
		    !strncmp(argv[i], "--print", 7) || !strncmp(argv[i], "--config", 8))
			goto out;
	err[0] = '\0';
	rc = ld_config_load(&c, argc, argv, err, sizeof(err));
	if (rc == LD_CONFIG_OK)
		check_loaded(&c);
	else
		check(rc == -EINVAL && err[0]);
out:
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool env_cleared;
	char *s;
	size_t i;

	if (!env_cleared) {
		for (i = 0; i < NSETTINGS; i++)
			unsetenv(settings[i].env);
		unsetenv("LADDER_CONFIG");
		env_cleared = true;
	}
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		s = malloc(size);
		if (!s)
			return 0;
		memcpy(s, data + 1, size - 1);
		s[size - 1] = '\0';
		values(s);
		free(s);
		break;
	case 1:
		file(data + 1, size - 1);
		break;
	default:
		flags(data + 1, size - 1);
		break;
	}
	return 0;
}
