/*
 * tiers.h - what a photo's status is once its versions were tried: the
 * graceful-degradation rule of the thumbnail job, on its own so it can be
 * tested without making images fail on purpose.
 *
 * Every version made: "ready", reason "". Some: "partial", and the reason
 * lists each missing version with its error ("1600: over the time limit of
 * 10 s"). None: "failed", and the reason is the first error alone (a bad
 * image fails every version alike: it is said once). The reason is cut to
 * cap bytes, never mid-way through the buffer's end.
 */
#ifndef LD_TIERS_H
#define LD_TIERS_H

#include <stddef.h>

/* errs[i] is "" when version names[i] was made. Returns the status. */
const char *ld_photo_tiers(unsigned n, const char *const *names, const char *const *errs,
			   char *reason, size_t cap);

#endif
