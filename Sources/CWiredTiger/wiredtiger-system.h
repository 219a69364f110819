// WiredTiger 3.2 from Debian's libwiredtiger-dev, found through `pkg-config wiredtiger`.
#include <wiredtiger.h>
