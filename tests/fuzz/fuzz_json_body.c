/*
 * fuzz_json_body.c - request bodies as every JSON route reads them: parse
 * (duplicates refused, any value), then every validator. Whatever a validator
 * accepts must satisfy the rules it promises.
 */
#include <stdint.h>
#include <stdlib.h>

#include "api/validate.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str a = {0}, b = {0}, c = {0};
	json_error_t err;
	json_t *o = ld_json_parse_body((const char *)data, size, &err);

	if (!o)
		return 0;
	if (ld_validate_user_create(o, &a, &b, &c, &v) == 0 &&
	    (a.n < 3 || a.n > LD_HANDLE_MAX || b.n < 1 || b.n > LD_DISPLAY_NAME_MAX || c.n < 8 ||
	     c.n > 256))
		abort();
	v.n = 0;
	if (ld_validate_item(o, &a, &v) == 0 && (a.n < 1 || a.n > LD_CONTENT_MAX))
		abort();
	v.n = 0;
	(void)ld_validate_session(o, &a, &b, &v);
	v.n = 0;
	(void)ld_validate_user_patch(o, &a, &v);
	json_decref(o);
	return 0;
}
