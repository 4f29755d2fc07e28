// BlockRTC compat header for building the mediasoup worker offline on Debian 12.
//
// Why this exists: mediasoup 3.27 is written against libsrtp 3 (its own fork,
// downloaded from GitHub by a meson wrap). Debian 12 ships libsrtp2 2.5.0 only.
// build.sh installs this file as worker/subprojects/libsrtp3/include/srtp.h, so
// mediasoup's `#include <srtp.h>` gets libsrtp2's header plus the handful of
// libsrtp 3 calls and types the worker uses (see src/RTC/SrtpSession.cpp,
// src/DepLibSRTP.cpp, include/RTC/SrtpSession.hpp), implemented on libsrtp2:
//
//   libsrtp 3 (used by mediasoup)            libsrtp 2 (Debian)
//   opaque srtp_policy_t + srtp_policy_*()   struct srtp_policy_t filled in
//   srtp_create(srtp_t*, srtp_policy_t)      srtp_create(srtp_t*, const srtp_policy_t*)
//   srtp_protect(ctx, in, len, out, &len, mki_index)
//                                            srtp_protect(ctx, buf, &int_len) in place
//   srtp_unprotect(ctx, in, len, out, &len)  srtp_unprotect(ctx, buf, &int_len) in place
//   (same for the _rtcp variants)
//   srtp_stream_remove(ctx, ssrc)            srtp_remove_stream(ctx, ssrc)
//   srtp_err_status_buffer_small/_cryptex_err  (do not exist; defined here)
//
// libsrtp 3 names that clash with different libsrtp 2 definitions are handled
// by C++ overloading (functions) or a macro (the srtp_policy_t type), after the
// libsrtp 2 header has been parsed. C++ only.

#ifndef BLOCKRTC_SRTP3_COMPAT_H
#define BLOCKRTC_SRTP3_COMPAT_H

#ifndef __cplusplus
#error "srtp3-compat.h is a C++ shim for the mediasoup worker"
#endif

#include <srtp2/srtp.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

// Error codes added in libsrtp 3. Values follow libsrtp 3's enum order and do
// not collide with any libsrtp 2 code (which end at 27, pkt_idx_adv).
static constexpr srtp_err_status_t srtp_err_status_buffer_small = static_cast<srtp_err_status_t>(28);
static constexpr srtp_err_status_t srtp_err_status_cryptex_err  = static_cast<srtp_err_status_t>(29);

// The libsrtp 3 policy object (opaque in libsrtp 3). Collects what
// srtp_create() needs to fill a libsrtp 2 srtp_policy_t.
struct blockrtc_srtp3_policy
{
	srtp_ssrc_t ssrc{};
	srtp_profile_t profile{ srtp_profile_reserved };
	bool hasProfile{ false };
	// Master key immediately followed by master salt, as libsrtp 2 expects.
	unsigned char keySalt[64]{};
	size_t keySaltLen{ 0 };
	bool hasKey{ false };
	unsigned long windowSize{ 128 };
	bool allowRepeatTx{ false };
};

using blockrtc_srtp3_policy_t = blockrtc_srtp3_policy*;

inline srtp_err_status_t srtp_policy_create(blockrtc_srtp3_policy_t* policy)
{
	if (policy == nullptr)
		return srtp_err_status_bad_param;

	*policy = new (std::nothrow) blockrtc_srtp3_policy{};

	return *policy ? srtp_err_status_ok : srtp_err_status_alloc_fail;
}

inline void srtp_policy_destroy(blockrtc_srtp3_policy_t policy)
{
	if (policy == nullptr)
		return;

	// Do not leave key material in freed memory.
	volatile unsigned char* p = policy->keySalt;
	for (size_t i = 0; i < sizeof(policy->keySalt); ++i)
		p[i] = 0;

	delete policy;
}

inline srtp_err_status_t srtp_policy_set_ssrc(blockrtc_srtp3_policy_t policy, srtp_ssrc_t ssrc)
{
	if (policy == nullptr)
		return srtp_err_status_bad_param;

	policy->ssrc = ssrc;

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_policy_set_profile(blockrtc_srtp3_policy_t policy, srtp_profile_t profile)
{
	if (policy == nullptr)
		return srtp_err_status_bad_param;

	// Validate now (libsrtp 3 does) rather than failing later in srtp_create().
	srtp_crypto_policy_t probe{};

	if (srtp_crypto_policy_set_from_profile_for_rtp(&probe, profile) != srtp_err_status_ok)
		return srtp_err_status_bad_param;

	policy->profile    = profile;
	policy->hasProfile = true;

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_policy_add_key(
  blockrtc_srtp3_policy_t policy,
  const uint8_t* key,
  size_t keyLen,
  const uint8_t* salt,
  size_t saltLen,
  const uint8_t* mki,
  size_t mkiLen)
{
	if (policy == nullptr || key == nullptr || (saltLen > 0 && salt == nullptr))
		return srtp_err_status_bad_param;

	// libsrtp 2's plain srtp_policy_t carries a single master key and no MKI;
	// mediasoup adds exactly one key without MKI.
	if (policy->hasKey || (mki != nullptr && mkiLen > 0))
		return srtp_err_status_bad_param;

	if (keyLen + saltLen > sizeof(policy->keySalt))
		return srtp_err_status_bad_param;

	std::memcpy(policy->keySalt, key, keyLen);

	if (saltLen > 0)
		std::memcpy(policy->keySalt + keyLen, salt, saltLen);

	policy->keySaltLen = keyLen + saltLen;
	policy->hasKey     = true;

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_policy_set_window_size(blockrtc_srtp3_policy_t policy, size_t windowSize)
{
	if (policy == nullptr || windowSize < 64 || windowSize >= 0x8000)
		return srtp_err_status_bad_param;

	policy->windowSize = static_cast<unsigned long>(windowSize);

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_policy_set_allow_repeat_tx(blockrtc_srtp3_policy_t policy, bool allow)
{
	if (policy == nullptr)
		return srtp_err_status_bad_param;

	policy->allowRepeatTx = allow;

	return srtp_err_status_ok;
}

// libsrtp 3 signature: policy passed by (opaque) handle.
inline srtp_err_status_t srtp_create(srtp_t* session, blockrtc_srtp3_policy_t policy)
{
	if (session == nullptr || policy == nullptr || !policy->hasProfile || !policy->hasKey)
		return srtp_err_status_bad_param;

	srtp_policy_t legacy;
	std::memset(&legacy, 0, sizeof(legacy));

	if (srtp_crypto_policy_set_from_profile_for_rtp(&legacy.rtp, policy->profile) != srtp_err_status_ok)
		return srtp_err_status_bad_param;

	if (srtp_crypto_policy_set_from_profile_for_rtcp(&legacy.rtcp, policy->profile) != srtp_err_status_ok)
		return srtp_err_status_bad_param;

	// In libsrtp 2, cipher_key_len is master key + salt.
	if (policy->keySaltLen != static_cast<size_t>(legacy.rtp.cipher_key_len))
		return srtp_err_status_bad_param;

	legacy.ssrc            = policy->ssrc;
	legacy.key             = policy->keySalt;
	legacy.window_size     = policy->windowSize;
	legacy.allow_repeat_tx = policy->allowRepeatTx ? 1 : 0;
	legacy.next            = nullptr;

	// libsrtp 2 copies the key material into the session; the policy (and
	// its key buffer) may be destroyed right after this returns.
	return srtp_create(session, static_cast<const srtp_policy_t*>(&legacy));
}

namespace blockrtc_srtp3_detail
{
	// libsrtp 2 protects/unprotects in place with an int length. Copy the input
	// into the output buffer (if different), check capacity, and run in place.
	template<typename Fn>
	inline srtp_err_status_t inPlace(
	  const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen, size_t trailer, Fn&& fn)
	{
		if (in == nullptr || out == nullptr || outLen == nullptr || inLen > static_cast<size_t>(INT_MAX))
			return srtp_err_status_bad_param;

		if (*outLen < inLen + trailer)
			return srtp_err_status_buffer_small;

		if (in != out)
			std::memmove(out, in, inLen);

		int len = static_cast<int>(inLen);
		const srtp_err_status_t err = fn(out, &len);

		if (err != srtp_err_status_ok)
			return err;

		*outLen = static_cast<size_t>(len);

		return srtp_err_status_ok;
	}
} // namespace blockrtc_srtp3_detail

inline srtp_err_status_t srtp_protect(
  srtp_t ctx, const uint8_t* rtp, size_t rtpLen, uint8_t* srtp, size_t* srtpLen, size_t mkiIndex)
{
	if (mkiIndex != 0)
		return srtp_err_status_bad_mki;

	return blockrtc_srtp3_detail::inPlace(
	  rtp, rtpLen, srtp, srtpLen, SRTP_MAX_TRAILER_LEN, [ctx](uint8_t* buf, int* len) {
		  return srtp_protect(ctx, static_cast<void*>(buf), len);
	  });
}

inline srtp_err_status_t srtp_unprotect(
  srtp_t ctx, const uint8_t* srtp, size_t srtpLen, uint8_t* rtp, size_t* rtpLen)
{
	return blockrtc_srtp3_detail::inPlace(srtp, srtpLen, rtp, rtpLen, 0, [ctx](uint8_t* buf, int* len) {
		return srtp_unprotect(ctx, static_cast<void*>(buf), len);
	});
}

inline srtp_err_status_t srtp_protect_rtcp(
  srtp_t ctx, const uint8_t* rtcp, size_t rtcpLen, uint8_t* srtcp, size_t* srtcpLen, size_t mkiIndex)
{
	if (mkiIndex != 0)
		return srtp_err_status_bad_mki;

	// SRTCP adds the 4 byte E+index word on top of the auth tag (+MKI).
	return blockrtc_srtp3_detail::inPlace(
	  rtcp, rtcpLen, srtcp, srtcpLen, SRTP_MAX_TRAILER_LEN + 4, [ctx](uint8_t* buf, int* len) {
		  return srtp_protect_rtcp(ctx, static_cast<void*>(buf), len);
	  });
}

inline srtp_err_status_t srtp_unprotect_rtcp(
  srtp_t ctx, const uint8_t* srtcp, size_t srtcpLen, uint8_t* rtcp, size_t* rtcpLen)
{
	return blockrtc_srtp3_detail::inPlace(srtcp, srtcpLen, rtcp, rtcpLen, 0, [ctx](uint8_t* buf, int* len) {
		return srtp_unprotect_rtcp(ctx, static_cast<void*>(buf), len);
	});
}

// Renamed in libsrtp 3. Both take the SSRC in network byte order.
inline srtp_err_status_t srtp_stream_remove(srtp_t session, uint32_t ssrc)
{
	return srtp_remove_stream(session, ssrc);
}

// From here on, mediasoup's `srtp_policy_t` means the libsrtp 3 handle type.
// (libsrtp 2's struct of the same name stays reachable as `struct srtp_policy_t`.)
#define srtp_policy_t blockrtc_srtp3_policy_t

#endif
