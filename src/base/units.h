/*
 * units.h - byte and millisecond units of the configuration's value syntax
 * (sizes are binary: 1 KiB = 1024 bytes; durations are stored in ms).
 */
#ifndef LD_UNITS_H
#define LD_UNITS_H

#define KiB  1024ull
#define MiB  (1024ull * KiB)
#define GiB  (1024ull * MiB)
#define SEC  1000ull
#define MIN  (60ull * SEC)
#define HOUR (60ull * MIN)
#define DAY  (24ull * HOUR)

#endif
