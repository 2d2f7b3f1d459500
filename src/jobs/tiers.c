/*
 * tiers.c - a photo's status from its versions' outcomes (tiers.h).
 */
#include "jobs/tiers.h"

#include <stdio.h>

const char *ld_photo_tiers(unsigned n, const char *const *names, const char *const *errs,
			   char *reason, size_t cap)
{
	unsigned i, made = 0;
	size_t used = 0;
	int w;

	if (cap)
		reason[0] = '\0';
	for (i = 0; i < n; i++)
		made += errs[i][0] == '\0';
	if (made == n)
		return "ready";
	for (i = 0; i < n && used < cap; i++) {
		if (!errs[i][0])
			continue;
		if (made == 0) {
			snprintf(reason, cap, "%s", errs[i]);
			break;
		}
		w = snprintf(reason + used, cap - used, "%s%s: %s", used ? "; " : "", names[i],
			     errs[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	return made ? "partial" : "failed";
}
