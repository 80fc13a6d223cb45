/* Input of regen-bindings.sh (bindgen). Not compiled into anything.
 * The two defines are what an out-of-tree module must provide before
 * including asterisk.h (asterisk.h #errors without AST_MODULE_SELF_SYM). */
#define AST_MODULE "chan_moq"
#define AST_MODULE_SELF_SYM __internal_chan_moq_self

#include <asterisk.h>
#include <asterisk/module.h>
#include <asterisk/options.h>
#include <asterisk/paths.h>
#include <asterisk/lock.h>
#include <asterisk/utils.h>
#include <asterisk/stringfields.h>
#include <asterisk/astobj2.h>
#include <asterisk/logger.h>
#include <asterisk/causes.h>
#include <asterisk/channelstate.h>
#include <asterisk/callerid.h>
#include <asterisk/format.h>
#include <asterisk/format_cap.h>
#include <asterisk/format_cache.h>
#include <asterisk/frame.h>
#include <asterisk/channel.h>
#include <asterisk/pbx.h>
#include <asterisk/cli.h>
#include <asterisk/config.h>
