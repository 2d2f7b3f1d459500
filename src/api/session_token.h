/*
 * session_token.h - the Ladder-Session header's token (docs/api.md): what a
 * write's response carries and a later read may send back, so the read is
 * answered by a node that has the write (store.h, read-your-writes).
 *
 * To clients the token is opaque. It is "v1." and the store position of the
 * write (op->commit_pos; a PostgreSQL WAL position) in 1 to 16 hex digits,
 * so tokens from any node of a deployment mean the same thing everywhere.
 */
#ifndef LD_SESSION_TOKEN_H
#define LD_SESSION_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define LD_SESSION_TOKEN_MAX 20 /* "v1." + 16 hex digits + NUL */

/* ld_session_token_format writes pos's token into out (LD_SESSION_TOKEN_MAX
 * bytes) and returns its length. */
size_t ld_session_token_format(uint64_t pos, char *out);

/* ld_session_token_parse reads a token of n bytes (no surrounding space)
 * into *pos: 0, or -EINVAL for anything ld_session_token_format does not
 * write (another prefix, no digits, more than 16, a non-hex byte). Hex
 * digits of either case are accepted. */
int ld_session_token_parse(const char *s, size_t n, uint64_t *pos);

#endif
