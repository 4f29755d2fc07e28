// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IERC1271 {
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4);
}

/**
 * Never deployed: its creation code runs in an eth_call ("deployless"), so one round trip
 * can deploy a counterfactual wallet (ERC-6492) and ask it about a signature (EIP-1271).
 * The constructor returns one byte: 1 when the wallet accepts the signature, 0 otherwise.
 * Nothing it does is kept: an eth_call never commits state.
 */
contract SignatureValidator {
    bytes32 private constant ERC6492_SUFFIX = 0x6492649264926492649264926492649264926492649264926492649264926492;

    constructor(address signer, bytes32 hash, bytes memory signature) {
        bool ok = check(signer, hash, signature);
        assembly {
            mstore(0, ok)
            return(31, 1)
        }
    }

    function check(address signer, bytes32 hash, bytes memory signature) private returns (bool) {
        bytes memory inner = signature;
        if (signature.length >= 32 && lastWord(signature) == ERC6492_SUFFIX) {
            // abi.encode(factory, factoryCalldata, innerSignature) ++ suffix: drop the suffix in place.
            assembly {
                mstore(signature, sub(mload(signature), 32))
            }
            (address factory, bytes memory factoryCalldata, bytes memory sig) = abi.decode(signature, (address, bytes, bytes));
            if (signer.code.length == 0) {
                (bool deployed, ) = factory.call(factoryCalldata);
                if (!deployed) return false;
            }
            inner = sig;
        }
        if (signer.code.length == 0) return false;
        try IERC1271(signer).isValidSignature(hash, inner) returns (bytes4 magic) {
            return magic == IERC1271.isValidSignature.selector;
        } catch {
            return false;
        }
    }

    function lastWord(bytes memory b) private pure returns (bytes32 w) {
        assembly {
            w := mload(add(b, mload(b)))
        }
    }
}
