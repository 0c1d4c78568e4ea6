#ifndef BFQ_CJSONC_SHIM_H
#define BFQ_CJSONC_SHIM_H
#include <json.h>
#endif
