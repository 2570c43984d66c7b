/* Stand-in for `starling check-metrics` until host/main.c dispatches to it:
 * argv[1..] are passed on with argv[0] = "check-metrics". */
#include "check_metrics.h"

int main(int argc, char **argv)
{
	argv[0] = "check-metrics";
	return cmd_check_metrics(argc, argv);
}
