/*
 * negotiate.h - content negotiation.
 */
#ifndef LD_NEGOTIATE_H
#define LD_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>

/* ld_accepts_gzip says whether an Accept-Encoding value v[0..n) allows gzip:
 * "gzip" or "*" listed with a q-value above zero (q=0, q=0.0, ... refuse). */
bool ld_accepts_gzip(const char *v, size_t n);

#endif
