/*
 * plan.h - the `ladder plan` subcommand.
 */
#ifndef LD_PLAN_H
#define LD_PLAN_H

/* ld_plan_main runs the capacity planner; argv[0] is "plan". */
int ld_plan_main(int argc, char **argv);

#endif
