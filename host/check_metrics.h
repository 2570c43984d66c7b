/* `starling check-metrics [--format auto|prometheus|openmetrics] [FILE|-]` */
#ifndef STARLING_HOST_CHECK_METRICS_H
#define STARLING_HOST_CHECK_METRICS_H

/* argv[0] is "check-metrics". Returns the process exit code: 0 when the
 * document parses, 1 with "line:col: message" on stderr when it does not,
 * 2 on usage or I/O errors. */
int cmd_check_metrics(int argc, char **argv);

#endif
