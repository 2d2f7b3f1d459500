#include "unit.h"

#include "http/router.h"

static const char *const routes[] = {
    "unmatched",      "/v1/users", "/v1/users/{id}", "/v1/users/{id}/items",
    "/v1/items/{id}", "/healthz",
};

static int match(const char *path, struct ld_route_match *m)
{
	return ld_router_match(routes, 6, path, strlen(path), m);
}

static void test_literal_routes(void)
{
	struct ld_route_match m;

	CHECK_INT(match("/v1/users", &m), 1);
	CHECK(m.param == NULL);
	CHECK_INT(match("/healthz", &m), 5);
	/* The non-pattern name at index 0 never matches a path. */
	CHECK_INT(match("unmatched", &m), -1);
}

static void test_captures(void)
{
	struct ld_route_match m;

	CHECK_INT(match("/v1/users/123", &m), 2);
	CHECK_INT(m.param_len, 3);
	CHECK_MEM(m.param, "123", 3);
	CHECK_INT(match("/v1/users/42/items", &m), 3);
	CHECK_INT(m.param_len, 2);
	CHECK_MEM(m.param, "42", 2);
	CHECK_INT(match("/v1/items/abc", &m), 4);
	CHECK_MEM(m.param, "abc", 3);
}

static void test_no_match(void)
{
	struct ld_route_match m;

	CHECK_INT(match("/v1/users/", &m), -1); /* empty capture */
	CHECK_INT(match("/v1/users//items", &m), -1);
	CHECK_INT(match("/v1/users/1/", &m), -1); /* trailing slash */
	CHECK_INT(match("/v1/user", &m), -1);
	CHECK_INT(match("/v1/usersx", &m), -1);
	CHECK_INT(match("/V1/users", &m), -1); /* case matters */
	CHECK_INT(match("/v1/users/1/items/2", &m), -1);
	CHECK_INT(match("", &m), -1);
	CHECK_INT(match("/", &m), -1);
}

int main(void)
{
	RUN(test_literal_routes);
	RUN(test_captures);
	RUN(test_no_match);
	return unit_finish();
}
